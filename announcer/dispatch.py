"""The one pass that `send`, `send --due`, `preview` and the daemon all use.

plan (talks + ledger + now) -> claim in the ledger -> build the message -> transport -> record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage

from announcer.config import Config
from announcer.errors import (AnnouncerError, ExitCode, PermanentFailure, TemporaryFailure,
                              UncertainDelivery)
from announcer.ledger import ABANDONED, Ledger, retry_delay
from announcer.plan import FACT_KINDS, Plan, PlannedMessage, fresh_message_id, plan_messages, sendable
from announcer.talks import Talk

UNDELIVERED = ("retry", "failed", "uncertain")
MISSED_DETAIL = "its talk started before it could be sent"
REFUSED = "already sent, or being sent (use --force to send it again)"


@dataclass
class Outcome:
    """What one message came to in a pass."""

    message: PlannedMessage
    state: str                      # sent, retry, failed, uncertain, missed, refused, invalid, dry-run
    detail: str | None = None
    email: EmailMessage | None = None   # dry runs only, which show or write it: a pass keeps no sent mail
    stops_pass: bool = False
    message_id: str | None = None       # the Message-ID sent (or tried)

    def __str__(self) -> str:
        m = self.message
        text = f"{self.state:<9} {m.talk_id} {m.kind}"
        message_id = self.message_id or (self.email["Message-ID"] if self.email is not None else None)
        if message_id and self.state in ("sent", "dry-run"):
            text += f" {message_id}"
        return text + (f": {self.detail}" if self.detail else "")


@dataclass
class PassResult:
    """Every outcome of a pass, the plan's warnings, and the error that stopped it early, if any."""

    outcomes: list[Outcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stopped_by: str | None = None

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def summary(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s}" for s in ("sent", "retry", "failed", "uncertain"))
        missed = self.count("missed")
        return counts + (f", {missed} missed" if missed else "")

    @property
    def exit_code(self) -> ExitCode:
        if self.count("invalid"):
            return ExitCode.BAD_INPUT
        undelivered = any(o.state in UNDELIVERED for o in self.outcomes)
        return ExitCode.UNDELIVERED if undelivered or self.stopped_by else ExitCode.OK


@dataclass
class Dispatcher:
    """Everything a pass needs; the clock is passed to each call, the transport is opened per pass."""

    config: Config
    talks: list[Talk]
    ledger: Ledger | None           # None when there is no ledger yet (a preview before any send)
    transport: object
    build: Callable[..., EmailMessage]
    dry_run: bool = False           # read the ledger, write nothing, send to a DryRunTransport
    log: Callable[[str], None] = lambda line: None
    stopping: Callable[[], bool] = lambda: False   # the daemon is shutting down: send no further message

    @property
    def recording(self) -> Ledger | None:
        """The ledger to write to: none in a dry run."""
        return None if self.dry_run else self.ledger

    def plan(self, now: datetime, records: dict | None = None) -> Plan:
        """The plan at `now` from the talks and the ledger."""
        if records is None:
            records = self.ledger.records() if self.ledger else {}
        announced = self.ledger.announced() if self.ledger else {}
        return plan_messages(self.config, self.talks, records, announced, now)

    def due_pass(self, now: datetime) -> PassResult:
        """Send every message whose time has come; record the ones whose window closed."""
        if self.recording:
            for talk_id, kind in self.recording.recover_abandoned(now):
                self.log(f"uncertain {talk_id} {kind}: {ABANDONED}")
        records = self.ledger.records() if self.ledger else {}
        plan = self.plan(now, records)
        result = PassResult(warnings=plan.warnings)
        for message in plan.messages:
            record = records.get(message.key)
            if message.state == "missed" and (record is None or record.state == "retry"):
                if self.recording:
                    self.recording.record(message, "missed", now, error=MISSED_DETAIL)
                self.log(f"missed    {message.talk_id} {message.kind}: {MISSED_DETAIL}")
                result.outcomes.append(Outcome(message, "missed", MISSED_DETAIL))
        self.deliver_all(sendable(plan, records, now), now, "due", result)
        return result

    def deliver_all(self, messages: list[PlannedMessage], now: datetime, mode: str,
                    result: PassResult | None = None) -> PassResult:
        """Deliver messages over one transport session, stopping at a failure of the connection itself."""
        result = result or PassResult()
        if not messages:
            return result
        talks = {talk.id: talk for talk in self.talks}
        with self.transport:
            for message in messages:
                if self.stopping():
                    result.stopped_by = "shutting down before the next message"
                    break
                outcome = self.deliver(message, now, mode, talks.get(message.talk_id))
                result.outcomes.append(outcome)
                if outcome.stops_pass:
                    result.stopped_by = outcome.detail
                    break
        return result

    def deliver(self, message: PlannedMessage, now: datetime, mode: str = "due",
                talk: Talk | None = None) -> Outcome:
        """Build, claim, send and record one message (of `talk`, looked up by its id if not given).

        The message is built before it is claimed: a template that fails to render is bad input,
        reported with its path:line, and the message stays due instead of becoming `failed`.
        """
        if mode == "force":
            message = replace(message, message_id=fresh_message_id(message.key, self.config.series.domain, now))
        talk = talk or next(t for t in self.talks if t.id == message.talk_id)
        try:
            email = self.build(talk, message, now)
        except AnnouncerError as error:
            self.log(f"invalid   {message.talk_id} {message.kind}: {error}")
            return Outcome(message, "invalid", str(error))
        except (ValueError, OverflowError) as error:  # what the email and icalendar packages raise for a
            # value that got past validation: this message is not sent, the pass goes on to the others
            detail = f"cannot build the message ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
            self.log(f"invalid   {message.talk_id} {message.kind}: {detail}")
            return Outcome(message, "invalid", detail)
        if self.dry_run:
            if mode == "manual" and message.state in ("sent", "uncertain", "claimed"):
                return Outcome(message, "refused", REFUSED)
            self.transport.send(email)
            return Outcome(message, "dry-run", email=email)
        if self.ledger and not self.ledger.claim(message, now, mode):
            return Outcome(message, "refused", REFUSED)
        try:
            self.transport.send(email)
        except TemporaryFailure as error:
            wait = retry_delay(self.ledger.attempts(message.key))
            outcome = self._record(message, "retry", now, str(error), next_try=now + wait, email=email)
            outcome.stops_pass = error.connection
            return outcome
        except PermanentFailure as error:
            outcome = self._record(message, "failed", now, str(error), email=email)
            outcome.stops_pass = error.connection
            return outcome
        except UncertainDelivery as error:
            return self._record(message, "uncertain", now, str(error), email=email)
        facts = talk.facts if message.kind in FACT_KINDS else None
        message_id = str(email["Message-ID"])
        self.ledger.record(message, "sent", now, message_id=message_id, facts=facts)
        self.log(f"sent      {message.talk_id} {message.kind} {message_id}")
        return Outcome(message, "sent", message_id=message_id)

    def _record(self, message: PlannedMessage, state: str, now: datetime, detail: str, *,
                next_try: datetime | None = None, email: EmailMessage | None = None) -> Outcome:
        message_id = str(email["Message-ID"]) if email is not None else None
        if self.recording:
            self.recording.record(message, state, now, message_id=message_id, error=detail, next_try=next_try)
        self.log(f"{state:<9} {message.talk_id} {message.kind}: {detail}")
        return Outcome(message, state, detail, message_id=message_id)
