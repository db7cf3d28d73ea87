"""`check`: every problem of a series, found by rendering every planned message.

Templates are rendered for every message, which is what can fail; a message is built and
measured only when a cheap bound says it may be over the list's size limit (SPEC 4.3), (SPEC 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

from announcer.commands.show import local_time, plan_at, upcoming
from announcer.deliver.secrets import approved_password
from announcer.errors import AnnouncerError, InputError, Problem
from announcer.plan import PlannedMessage
from announcer.run.workers import in_chunks
from announcer.sources.config import AUTOMATIC_KINDS
from announcer.sources.courses import with_course_posts
from announcer.sources.series import Loaded, load_series
from announcer.sources.talk import Talk
from announcer.sources.timing import parse_now

TBA_WARNING_WINDOW = timedelta(hours=48)
EMPTY_SLOT_WARNING_WINDOW = timedelta(days=7)


@dataclass
class Report:
    """What `check` found."""

    problems: list[Problem]
    summary: str

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]


def check_series(config_option: str | None, now_text: str | None) -> Report:
    """Load everything and render every planned message in memory; collect every problem."""
    try:
        loaded = load_series(config_option, strict=False)
    except InputError as error:
        return Report(error.problems, "the configuration has errors: nothing else was checked")
    now = parse_now(now_text)
    config = loaded.config
    plan = plan_at(loaded, now)
    problems = list(loaded.talkset.problems)
    problems += [Problem(config.series.talks_dir, None, text, warning=True) for text in plan.warnings]
    problems += plan.renames.values()  # whatever the time: nothing is sent for such a talk
    talks = with_course_posts(loaded.talks)
    planned = upcoming(plan, now)  # what `plan` lists: one count, one truth
    for message in planned:
        talk = talks[message.talk_id]
        if (talk.is_tba and message.kind == "announcement" and message.state in ("pending", "due")
                and message.due - now <= TBA_WARNING_WINDOW):
            problems.append(Problem(talk.path, talk.line, f'talk "{talk.id}" has no title (TBA) and its '
                                    f"announcement is due {local_time(message.due, config)}", warning=True))
        if (message.kind == "announcement" and message.state == "tba" and now < message.closes
                and message.due - now <= EMPTY_SLOT_WARNING_WINDOW):
            problems.append(Problem(talk.path, talk.line, f'talk "{talk.id}" is an empty slot (no speaker, no '
                                    f"title): its announcement, due {local_time(message.due, config)}, is not "
                                    "sent until it has one", warning=True))
    first_of_kind = {m.kind: m.message_id for m in reversed(planned)}.values()
    checker = MessageChecker(loaded, now, build_in_full=frozenset(first_of_kind))
    # Every template compiles, as `send` requires, even of a kind that no planned message uses.
    kinds = [rule.kind for rule in config.messages] + list(AUTOMATIC_KINDS)
    problems += checker.renderer.check(dict.fromkeys(kinds))
    checked = in_chunks(checker, planned, group=lambda message: message.talk_id)
    problems += chain.from_iterable(checked)
    unique = list(dict.fromkeys(problems))
    errors = sum(1 for p in unique if not p.warning)
    summary = (f"{_count(len(loaded.talks), 'talk')}, {_count(len(planned), 'message')} planned: "
               f"{_count(errors, 'error')}, {_count(len(unique) - errors, 'warning')}")
    return Report(unique, summary)


class MessageChecker:
    """The problems of planned messages: their templates' errors, and what would make Mailman hold them."""

    def __init__(self, loaded: Loaded, now: datetime, build_in_full: frozenset[str] = frozenset()):
        from announcer.compose.render import Renderer

        self.config = loaded.config
        self.talks = with_course_posts(loaded.talks)
        self.now = now
        self.renderer = Renderer(loaded.config)
        self.approved = approved_password(loaded.config, preview=True)
        self.build_in_full = build_in_full   # Message-IDs of messages to build whatever their size
        self.kinds_to_build: set[str] = set()   # kinds whose message to build failed to render here

    def __call__(self, messages: Sequence[PlannedMessage]) -> list[list[Problem]]:
        return [self.problems(message) for message in messages]

    def problems(self, message: PlannedMessage) -> list[Problem]:
        """One message's problems: its templates' errors, or Mailman's reasons to hold it."""
        talk = self.talks[message.talk_id]
        try:
            warnings = self.warnings(talk, message)
        except InputError as error:
            return error.problems
        except AnnouncerError as error:
            return [Problem(talk.path, talk.line, f"{message.kind}: {error}")]
        return [Problem(talk.path, talk.line, f"{message.kind}: {text}", warning=True) for text in warnings]

    def warnings(self, talk: Talk, message: PlannedMessage) -> list[str]:
        """Mailman's reasons to hold this message; its size measured only when it may be too large.

        `check_series` has the first message of each kind built in full whatever its size, so that
        what only building a message meets (its headers, its invite) is met here as in `send`; when
        that message's templates fail, the next of its kind that this process renders is built.
        """
        from announcer.compose.message import build_message, command_warnings, size_bound, size_warnings, to_bytes

        try:
            rendered = self.renderer.render(talk, message.kind, changes=message.changes, sequence=message.sequence)
        except AnnouncerError:
            if message.message_id in self.build_in_full:
                self.kinds_to_build.add(message.kind)  # the next of its kind is built instead
            raise
        warnings = command_warnings(rendered.subject, rendered.text)
        max_size = self.config.mail.max_size
        if (message.message_id in self.build_in_full or message.kind in self.kinds_to_build
                or size_bound(self.config, talk, message, rendered, self.approved) > max_size):
            self.kinds_to_build.discard(message.kind)
            email = build_message(self.config, talk, message, now=self.now, renderer=self.renderer,
                                  approved=self.approved)
            warnings = size_warnings(len(to_bytes(email, mask_approved=False)), max_size) + warnings
        return warnings


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
