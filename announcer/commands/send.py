"""`send TALK --kind KIND` and `send --due`: one message, or every due one, through the one pass."""

from __future__ import annotations

import re
from contextlib import nullcontext

from announcer.commands.preview import choose
from announcer.deliver.dispatch import PassResult, make_dispatcher
from announcer.deliver.ledger import open_ledger
from announcer.errors import AnnouncerError, UsageError
from announcer.plan import Mode, Plan, PlannedMessage
from announcer.sources.series import Loaded, load_series
from announcer.sources.timing import parse_now


def send_command(config_option: str | None, talk_id: str | None, kind: str | None, *, dry_run: bool,
                 force: bool, now_text: str | None, catch_up: bool = False,
                 failed: bool = False, test_to: str | None = None) -> tuple[str, int, list[str]]:
    """`send TALK --kind KIND`, `send --due [--catch-up]` or `send --failed`: the report, the exit
    code, and the errors for stderr (one line each: a stopped pass, a talk that looks renamed).
    With test_to, a test send of those messages to that address alone, recorded nowhere."""
    from announcer.compose.message import preview_text

    loaded = load_series(config_option)
    now = parse_now(now_text)
    if test_to:
        test_to = _test_address(test_to)
    with open_ledger(loaded.config, write=not (dry_run or test_to)) or nullcontext() as ledger:
        dispatcher = make_dispatcher(loaded, ledger, dry_run=dry_run, test_to=test_to)
        if failed:
            plan = dispatcher.plan(now)
            again = [m for m in plan.messages
                     if m.state == "failed" and m.closes > now and m.talk_id not in plan.renames]
            result = dispatcher.deliver_all(again, now, Mode.MANUAL)
        elif talk_id is None:
            result = dispatcher.due_pass(now, catch_up=catch_up)
        else:
            if dispatcher.recording:  # a dead run's claim becomes uncertain: --force may then send it
                dispatcher.recording.recover_abandoned(now)
            message = _one_message(loaded, dispatcher.plan(now), talk_id, kind, force or bool(test_to))
            result = dispatcher.deliver_all([message], now, Mode.FORCE if force else Mode.MANUAL)
            refused = [o for o in result.outcomes if o.state == "refused"]
            if refused:
                raise AnnouncerError(f'{talk_id} {kind}: {refused[0].detail}')
    errors = result.errors + ([f"stopped: {result.stopped_by}"] if result.stopped_by else [])
    return _send_report(result, dry_run, preview_text, bool(test_to)), int(result.exit_code), errors


def _test_address(text: str) -> str:
    """The --to address: exactly one plain e-mail address on one line."""
    from email.utils import parseaddr

    name, address = parseaddr(text)
    if "".join(text.split()) != text.strip() or not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+", address):
        raise UsageError(f"--to {text!r}: give one e-mail address, like you@example.edu")
    return address


def _one_message(loaded: Loaded, plan: Plan, talk_id: str, kind: str, force: bool) -> PlannedMessage:
    """The talk's message of that kind: the first not yet sent (a kind may be scheduled twice)."""
    talk = loaded.talk(talk_id)
    if talk_id in plan.renames:
        raise AnnouncerError(str(plan.renames[talk_id]))
    candidates = choose(loaded, plan, talk_id, kind)
    message = next((m for m in candidates if m.state != "sent"), candidates[0])
    if message.state == "tba":
        raise AnnouncerError(f"{talk_id} {kind}: the talk is an empty slot (no speaker, no title), so nothing "
                             "is sent for it: give it a speaker or a title first")
    if message.state == "skipped" and not force:
        raise AnnouncerError(f'{talk_id} {kind}: the talk is {talk.status}, so nothing is sent for it '
                             "(change its status, or use --force)")
    return message


def _send_report(result: PassResult, dry_run: bool, preview_text, test: bool = False) -> str:
    lines = []
    for outcome in result.outcomes:
        if outcome.state == "due":  # not sent: the connection failed (the stopped line on stderr says why)
            continue
        if outcome.state == "dry-run":
            lines.append(preview_text(outcome.email))
            lines.append("-" * 72)
        else:
            lines.append(str(outcome))
    lines += [f"warning: {w}" for w in result.warnings]
    if dry_run:
        lines.append(f"dry run: {result.count('dry-run')} messages would be sent; nothing was sent or recorded")
    elif test:
        lines.append(f"{result.summary} (a test send: nothing recorded)")
    else:
        lines.append(result.summary)
    return "\n".join(lines) + "\n"
