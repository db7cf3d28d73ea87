"""A series loaded from its files, and the bodies of the commands that read it.

Each public function here is what one CLI command calls: load, plan or dispatch, return text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from announcer.config import MASK, Config, did_you_mean, find_config, load_config
from announcer.cores import in_chunks
from announcer.dispatch import Dispatcher, PassResult
from announcer.errors import AnnouncerError, InputError
from announcer.ledger import Ledger
from announcer.plan import Plan, PlannedMessage
from announcer.talks import Talk, TalkSet, load_talks
from announcer.timing import parse_now

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
    if not value.isprintable() or not value.isascii() or len(value) > 200:  # never shown: it is a secret
        raise AnnouncerError(f"{config.path}: ${variable}, the Approved password, must be one line of at most 200 "
                             "printable ASCII characters (its value is not shown)")
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
    """The dispatcher for a series: the configured transport to send, a DryRunTransport to preview."""
    from announcer.message import build_message
    from announcer.render import Renderer
    from announcer.transport import DryRunTransport, open_transport

    config = loaded.config
    approved = approved_password(config, dry_run)
    transport = DryRunTransport() if dry_run else open_transport(config, smtp_password(config))
    renderer = Renderer(config)
    if not dry_run:  # a template that does not compile stops a send before anything goes out
        kinds = [rule.kind for rule in config.messages] + ["update", "cancellation"]
        if problems := renderer.check(dict.fromkeys(kinds)):
            raise InputError(problems)

    def build(talk: Talk, message: PlannedMessage, now: datetime):
        return build_message(config, talk, message, now=now, renderer=renderer, approved=approved)

    return Dispatcher(config=config, talks=loaded.talks, ledger=ledger, transport=transport, build=build,
                      dry_run=dry_run, log=log or (lambda line: None))


def local_time(moment: datetime, config: Config) -> str:
    """"Tue 2027-02-23 14:00 EST": a moment in the series' zone, for tables and messages."""
    return moment.astimezone(config.series.timezone).strftime("%a %Y-%m-%d %H:%M %Z")


def plan_rows(config_option: str | None, now_text: str | None, include_all: bool,
              as_json: bool) -> tuple[str, list[str]]:
    """The plan as a table (or JSON): due time in the series zone, talk, kind, state."""
    loaded = load_series(config_option)
    now = now_from(now_text)
    plan = plan_at(loaded, now)
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
    lines += [f"{local_time(m.due, loaded.config):<24}  {m.talk_id:<{width}}  {m.kind:<{kind_width}}  {m.state}"
              for m in rows]
    return "\n".join(lines), plan.warnings


def plan_at(loaded: Loaded, now: datetime) -> Plan:
    """The plan at `now`, from the talks and the ledger (if there is one yet)."""
    with open_ledger(loaded.config, write=False) or nullcontext() as ledger:
        return Dispatcher(loaded.config, loaded.talks, ledger, None, None).plan(now)


def preview_messages(config_option: str | None, talk_id: str | None, kind: str | None, out: Path | None,
                     now_text: str | None) -> tuple[str, list[str], list[str]]:
    """Render the chosen messages through the sending path with a transport that sends nothing.

    Returns the text (or the files written), the warnings, and the messages that failed.
    """
    loaded = load_series(config_option)
    now = now_from(now_text)
    with open_ledger(loaded.config, write=False) or nullcontext() as ledger:
        dispatcher = make_dispatcher(loaded, ledger, dry_run=True)
        plan = dispatcher.plan(now)
        chosen = _choose(loaded, plan, talk_id, kind)
    if out is not None and chosen:
        out.mkdir(parents=True, exist_ok=True)
    named = list(zip(chosen, _file_names(chosen)))
    previews = in_chunks(Previewer(dispatcher, now, out), named, group=lambda pair: pair[0].talk_id)
    warnings = plan.warnings + [warning for p in previews for warning in p.warnings]
    errors = [p.error for p in previews if p.error]
    shown = [p.shown for p in previews if not p.error]
    if out is not None:
        return "".join(f"wrote {path}\n" for path in shown), warnings, errors
    return ("\n" + "=" * 72 + "\n").join(shown), warnings, errors


@dataclass
class Preview:
    """One previewed message: its text, or the file written; Mailman's warnings; or what went wrong."""

    shown: str
    warnings: list[str]
    error: str | None = None


@dataclass
class Previewer:
    """Previews messages through the dispatcher (a dry run), as text or as .eml files in `out`."""

    dispatcher: Dispatcher
    now: datetime
    out: Path | None

    def __call__(self, named: Sequence[tuple[PlannedMessage, str]]) -> list[Preview]:
        from announcer.message import mailman_warnings, preview_text, to_bytes

        result = self.dispatcher.deliver_all([message for message, _ in named], self.now, "preview")
        previews = []
        for outcome, (message, name) in zip(result.outcomes, named):
            label = f"{message.talk_id} {message.kind}"
            if outcome.email is None:
                previews.append(Preview("", [], f"{label}: {outcome.detail}"))
                continue
            # A preview is built with Approved masked already, so these are the bytes that are measured.
            data = to_bytes(outcome.email, mask_approved=True)
            warnings = [f"{label}: {warning}" for warning in
                        mailman_warnings(outcome.email, self.dispatcher.config.mail.max_size, size=len(data))]
            if self.out is None:
                previews.append(Preview(preview_text(outcome.email), warnings))
                continue
            path = self.out / f"{name}.eml"
            path.write_bytes(data)
            previews.append(Preview(str(path), warnings))
        return previews


def _file_names(messages: list[PlannedMessage]) -> list[str]:
    """TALK.KIND for each message, with -2, -3 ... for a kind planned twice."""
    taken: set[str] = set()
    names = []
    for message in messages:
        name = candidate = f"{message.talk_id}.{message.kind}"
        number = 2
        while candidate in taken:
            candidate, number = f"{name}-{number}", number + 1
        taken.add(candidate)
        names.append(candidate)
    return names


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
        lines.append(f"{local_time(event.at, config)}  {event.talk_id}  {event.kind}  {event.state}  {detail}".rstrip())
    return "\n".join(lines) + "\n"
