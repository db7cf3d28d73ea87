"""A series loaded from its files, and the bodies of the commands that read it.

Each public function here is what one CLI command calls: load, plan or dispatch, return text.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from announcer.config import Config, did_you_mean, find_config, load_config
from announcer.dispatch import Dispatcher, PassResult
from announcer.errors import AnnouncerError, InputError, Problem
from announcer.ledger import Ledger
from announcer.plan import Plan, PlannedMessage
from announcer.talks import Talk, TalkSet, load_talks
from announcer.timing import parse_now

TBA_WARNING_WINDOW = timedelta(hours=48)
MASK = "********"
UPCOMING = ("pending", "due", "retry", "skipped", "failed", "uncertain")


@dataclass
class Loaded:
    """A series' config and talks, as read from its files."""

    config: Config
    talkset: TalkSet

    @property
    def talks(self) -> list[Talk]:
        return self.talkset.talks

    def talk(self, talk_id: str) -> Talk:
        """The talk with that id, or an error with a did-you-mean hint."""
        for talk in self.talks:
            if talk.id == talk_id:
                return talk
        hint = did_you_mean(talk_id, [t.id for t in self.talks])
        raise AnnouncerError(f'no talk "{talk_id}" in {self.config.series.talks_dir}{hint}')


def load_series(config_option: str | None, strict: bool = True) -> Loaded:
    """Load the config and every talk; with strict, any error stops here (nothing is sent)."""
    config = load_config(find_config(config_option))
    talkset = load_talks(config.series)
    if strict and talkset.errors:
        raise InputError(talkset.problems)
    return Loaded(config, talkset)


def now_from(text: str | None) -> datetime:
    """The moment a command acts at: `--now`, or the clock."""
    try:
        return parse_now(text)
    except ValueError as error:
        raise AnnouncerError(str(error)) from None


def open_ledger(config: Config, write: bool) -> Ledger | None:
    """The ledger; for read-only commands None when it does not exist yet (nothing was sent).

    Callers write `with open_ledger(...) or nullcontext() as ledger:` so it is closed either way.
    """
    if not write and not config.ledger_path.exists():
        return None
    return Ledger(config.ledger_path)


def approved_password(config: Config, preview: bool) -> str | None:
    """The Mailman Approved password from its variable, masked for previews and dry runs."""
    variable = config.mail.approved_password_env
    if variable is None:
        return None
    if preview:
        return MASK
    value = os.environ.get(variable)
    if not value:
        raise AnnouncerError(f"{config.path}: approved_password_env names ${variable}, which is not set")
    return value


def smtp_password(config: Config) -> str | None:
    """The SMTP password from its variable; checked before anything is sent."""
    smtp = config.smtp
    if config.transport != "smtp" or smtp is None or not smtp.password_env:
        return None
    value = os.environ.get(smtp.password_env)
    if not value:
        raise AnnouncerError(f"{config.path}: password_env names ${smtp.password_env}, which is not set")
    return value


def make_dispatcher(loaded: Loaded, ledger: Ledger | None, dry_run: bool, log=None) -> Dispatcher:
    """The dispatcher for a series: the configured transport to send, a recording one to preview."""
    from announcer.message import build_message
    from announcer.render import Renderer
    from announcer.transport import RecordingTransport, open_transport

    config = loaded.config
    approved = approved_password(config, dry_run)
    transport = RecordingTransport() if dry_run else open_transport(config, smtp_password(config))
    renderer = Renderer(config)
    if not dry_run:  # a template that does not compile stops a send before anything goes out
        kinds = [rule.kind for rule in config.messages] + ["update", "cancellation"]
        if problems := renderer.check(dict.fromkeys(kinds)):
            raise InputError(problems)

    def build(talk: Talk, message: PlannedMessage, now: datetime):
        return build_message(config, talk, message, now=now, renderer=renderer, approved=approved)

    return Dispatcher(config=config, talks=loaded.talks, ledger=ledger, transport=transport, build=build,
                      dry_run=dry_run, log=log or (lambda line: None))


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
    now = now_from(now_text)
    config = loaded.config
    problems = list(loaded.talkset.problems)
    with open_ledger(config, write=False) or nullcontext() as ledger:
        dispatcher = make_dispatcher(loaded, ledger, dry_run=True)
        plan = dispatcher.plan(now)
    problems += [Problem(config.series.talks_dir, None, text, warning=True) for text in plan.warnings]
    talks = {t.id: t for t in loaded.talks}
    for message in plan.messages:
        talk = talks[message.talk_id]
        if (talk.is_tba and message.kind == "announcement" and message.state in ("pending", "due")
                and message.due - now <= TBA_WARNING_WINDOW):
            problems.append(Problem(talk.path, talk.line, f'talk "{talk.id}" has no title (TBA) and its '
                                    f"announcement is due {_when(message.due, config)}", warning=True))
    problems += _render_problems(dispatcher, talks, plan.messages, now)
    unique = list(dict.fromkeys(problems))
    errors = sum(1 for p in unique if not p.warning)
    summary = (f"{_count(len(loaded.talks), 'talk')}, {_count(len(plan.messages), 'message')} planned: "
               f"{_count(errors, 'error')}, {_count(len(unique) - errors, 'warning')}")
    return Report(unique, summary)


def _render_problems(dispatcher: Dispatcher, talks: dict[str, Talk], messages: list[PlannedMessage],
                     now: datetime) -> list[Problem]:
    from announcer.message import mailman_warnings

    problems: list[Problem] = []
    for message in messages:
        talk = talks[message.talk_id]
        try:
            email = dispatcher.build(talk, message, now)
        except InputError as error:
            problems.extend(error.problems)
            continue
        except AnnouncerError as error:
            problems.append(Problem(talk.path, talk.line, f"{message.kind}: {error}"))
            continue
        for text in mailman_warnings(email, dispatcher.config.mail.max_size):
            problems.append(Problem(talk.path, talk.line, f"{message.kind}: {text}", warning=True))
    return problems


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _when(moment: datetime, config: Config) -> str:
    return moment.astimezone(config.series.timezone).strftime("%a %Y-%m-%d %H:%M %Z")


def plan_rows(config_option: str | None, now_text: str | None, include_all: bool,
              as_json: bool) -> tuple[str, list[str]]:
    """The plan as a table (or JSON): due time in the series zone, talk, kind, state."""
    loaded = load_series(config_option)
    now = now_from(now_text)
    plan = _plan(loaded, now)
    rows = plan.messages + plan.history if include_all else [
        m for m in plan.messages if m.state in UPCOMING and m.closes > now]
    rows.sort(key=lambda m: (m.due, m.talk_id, m.key))
    zone = loaded.config.series.timezone
    if as_json:
        data = [{"talk": m.talk_id, "kind": m.kind, "due": m.due.astimezone(zone).isoformat(),
                 "state": m.state} for m in rows]
        return json.dumps(data, indent=2), plan.warnings
    if not rows:
        return "nothing planned" + ("" if include_all else " (--all shows past messages)"), plan.warnings
    width = max(len(m.talk_id) for m in rows)
    kind_width = max(len(m.kind) for m in rows)
    lines = [f"{'DUE (' + zone.key + ')':<24}  {'TALK':<{width}}  {'KIND':<{kind_width}}  STATE"]
    lines += [f"{_when(m.due, loaded.config):<24}  {m.talk_id:<{width}}  {m.kind:<{kind_width}}  {m.state}"
              for m in rows]
    return "\n".join(lines), plan.warnings


def _plan(loaded: Loaded, now: datetime) -> Plan:
    with open_ledger(loaded.config, write=False) or nullcontext() as ledger:
        return Dispatcher(loaded.config, loaded.talks, ledger, None, None).plan(now)


def preview_messages(config_option: str | None, talk_id: str | None, kind: str | None, out: Path | None,
                     now_text: str | None) -> tuple[str, list[str]]:
    """Render the chosen messages through the sending path with a transport that sends nothing."""
    from announcer.message import mailman_warnings, preview_text, to_bytes

    loaded = load_series(config_option)
    now = now_from(now_text)
    with open_ledger(loaded.config, write=False) or nullcontext() as ledger:
        dispatcher = make_dispatcher(loaded, ledger, dry_run=True)
        plan = dispatcher.plan(now)
        chosen = _choose(loaded, plan, talk_id, kind)
        result = dispatcher.deliver_all(chosen, now, "preview")
    warnings = list(plan.warnings)
    texts, written = [], []
    names: set[str] = set()
    for outcome in result.outcomes:
        if outcome.email is None:
            raise AnnouncerError(f"{outcome.message.talk_id} {outcome.message.kind}: {outcome.detail}")
        message = outcome.message
        # A preview is built with Approved masked already, so these are the bytes that are measured.
        data = to_bytes(outcome.email, mask_approved=True)
        warnings += [f"{message.talk_id} {message.kind}: {w}"
                     for w in mailman_warnings(outcome.email, loaded.config.mail.max_size, size=len(data))]
        if out is None:
            texts.append(preview_text(outcome.email))
            continue
        name = _unique_name(f"{message.talk_id}.{message.kind}", names)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.eml"
        path.write_bytes(data)
        written.append(f"wrote {path}")
    if out is not None:
        return "\n".join(written) + "\n", warnings
    rule = "\n" + "=" * 72 + "\n"
    return rule.join(texts), warnings


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    taken.add(candidate)
    return candidate


def _choose(loaded: Loaded, plan: Plan, talk_id: str | None, kind: str | None) -> list[PlannedMessage]:
    """The messages a preview shows: a talk's (all kinds), or every upcoming one."""
    if talk_id is not None:
        loaded.talk(talk_id)
        chosen = [m for m in plan.messages if m.talk_id == talk_id]
    else:
        chosen = [m for m in plan.messages if m.state in ("pending", "due", "retry", "skipped")]
    if kind is not None:
        kinds = sorted({m.kind for m in chosen})
        chosen = [m for m in chosen if m.kind == kind]
        if not chosen:
            where = f'talk "{talk_id}"' if talk_id else "the plan"
            raise AnnouncerError(f'no {kind} message planned for {where}'
                                 + (f" (planned: {', '.join(kinds)})" if kinds else "")
                                 + (" - an update is planned only when an announced talk changes"
                                    if kind in ("update", "cancellation") else ""))
    return chosen


def send_command(config_option: str | None, talk_id: str | None, kind: str | None, *, dry_run: bool,
                 force: bool, now_text: str | None) -> tuple[str, int]:
    """`send TALK --kind KIND` or `send --due`: returns the report and the exit code."""
    from announcer.message import preview_text

    loaded = load_series(config_option)
    now = now_from(now_text)
    with open_ledger(loaded.config, write=not dry_run) or nullcontext() as ledger:
        dispatcher = make_dispatcher(loaded, ledger, dry_run=dry_run)
        if talk_id is None:
            result = dispatcher.due_pass(now)
        else:
            message = _one_message(loaded, dispatcher.plan(now), talk_id, kind, force)
            result = dispatcher.deliver_all([message], now, "force" if force else "manual")
            refused = [o for o in result.outcomes if o.state == "refused"]
            if refused:
                raise AnnouncerError(f'{talk_id} {kind}: {refused[0].detail}')
    return _send_report(result, dry_run, preview_text), int(result.exit_code)


def _one_message(loaded: Loaded, plan: Plan, talk_id: str, kind: str, force: bool) -> PlannedMessage:
    """The talk's message of that kind: the first not yet sent (a kind may be scheduled twice)."""
    talk = loaded.talk(talk_id)
    candidates = _choose(loaded, plan, talk_id, kind)
    message = next((m for m in candidates if m.state != "sent"), candidates[0])
    if message.state == "skipped" and not force:
        raise AnnouncerError(f'{talk_id} {kind}: the talk is {talk.status}, so nothing is sent for it '
                             "(change its status, or use --force)")
    return message


def _send_report(result: PassResult, dry_run: bool, preview_text) -> str:
    lines = []
    for outcome in result.outcomes:
        if outcome.state == "dry-run":
            lines.append(preview_text(outcome.email))
            lines.append("-" * 72)
        else:
            lines.append(str(outcome))
    lines += [f"warning: {w}" for w in result.warnings]
    if result.stopped_by:
        lines.append(f"stopped: {result.stopped_by}")
    if dry_run:
        lines.append(f"dry run: {result.count('dry-run')} messages would be sent; nothing was sent or recorded")
    else:
        lines.append(result.summary)
    return "\n".join(lines) + "\n"


def log_lines(config_option: str | None, talk_id: str | None) -> str:
    """The ledger's history as text, oldest first."""
    config = load_config(find_config(config_option))
    ledger = open_ledger(config, write=False)
    if ledger is None:
        return f"nothing recorded yet (no ledger at {config.ledger_path})\n"
    with ledger:
        events = ledger.history(talk_id)
    if not events:
        return "nothing recorded" + (f' for talk "{talk_id}"' if talk_id else "") + "\n"
    lines = []
    for event in events:
        detail = event.message_id or ""
        if event.detail:
            detail = f"{detail} {event.detail}".strip()
        lines.append(f"{_when(event.at, config)}  {event.talk_id}  {event.kind}  {event.state}  {detail}".rstrip())
    return "\n".join(lines) + "\n"
