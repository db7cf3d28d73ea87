"""`preview`: messages rendered through the sending path with a transport that sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from announcer.deliver.dispatch import Dispatcher, make_dispatcher
from announcer.deliver.ledger import open_ledger
from announcer.errors import AnnouncerError
from announcer.plan import Mode, Plan, PlannedMessage
from announcer.run.workers import in_chunks
from announcer.sources.series import Loaded, load_series
from announcer.sources.timing import parse_now


def preview_messages(config_option: str | None, talk_id: str | None, kind: str | None, out: Path | None,
                     now_text: str | None) -> tuple[str, list[str], list[str]]:
    """Render the chosen messages through the sending path with a transport that sends nothing.

    Returns the text (or the files written), the warnings, and the messages that failed.
    """
    loaded = load_series(config_option)
    now = parse_now(now_text)
    with open_ledger(loaded.config, write=False) or nullcontext() as ledger:
        dispatcher = make_dispatcher(loaded, ledger, dry_run=True)
        plan = dispatcher.plan(now)
        chosen = choose(loaded, plan, talk_id, kind)
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
        from announcer.compose.message import mailman_warnings, preview_text, to_bytes

        result = self.dispatcher.deliver_all([message for message, _ in named], self.now, Mode.PREVIEW)
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


def choose(loaded: Loaded, plan: Plan, talk_id: str | None, kind: str | None) -> list[PlannedMessage]:
    """The messages a preview shows: a talk's (all kinds), or every upcoming one."""
    if talk_id is not None:
        loaded.talk(talk_id)
        chosen = [m for m in plan.messages if m.talk_id == talk_id]
    else:
        chosen = [m for m in plan.messages if m.state in ("pending", "due", "held", "retry", "skipped")]
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
