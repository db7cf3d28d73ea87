"""The one pass that `send`, `send --due`, `preview` and the daemon all use.

plan (talks + ledger + now) -> claim in the ledger -> build the message -> transport -> record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from announcer.deliver.ledger import ABANDONED, Ledger, clock, retry_delay
from announcer.deliver.logins import (
    RefusedLogin,
    fingerprint,
    forget_refused,
    last_refused,
    remember_refused,
    waiting_login,
)
from announcer.errors import (
    AnnouncerError,
    DeliveryError,
    ExitCode,
    InputError,
    PermanentFailure,
    TemporaryFailure,
    UncertainDelivery,
)
from announcer.plan import (
    FACT_KINDS,
    Mode,
    Plan,
    PlannedMessage,
    claimable,
    fresh_message_id,
    held_before,
    identity,
    plan_messages,
    sendable,
)
from announcer.sources.config import Config
from announcer.sources.courses import with_course_posts
from announcer.sources.series import Loaded
from announcer.sources.talk import Talk

if TYPE_CHECKING:  # the transports import smtplib and ssl: only a send needs them
    from announcer.deliver.transport import Transport

UNDELIVERED = ("retry", "failed", "uncertain")
MISSED_DETAIL = "its talk started before it could be sent"
REFUSED = "already sent, or being sent (use --force to send it again)"


@dataclass
class Outcome:
    """What one message came to in a pass."""

    message: PlannedMessage
    state: str                      # sent, retry, failed, uncertain, missed, refused, invalid, dry-run,
                                    # due (not sent: the connection failed, the message stays due)
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
    refused_login: RefusedLogin | None = None   # the same settings are not tried again before its next_try
    errors: list[str] = field(default_factory=list)     # talks not sent for (a rename): exit 1
    held: list[PlannedMessage] = field(default_factory=list)   # due before a new ledger: not sent

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def summary(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s}" for s in ("sent", "retry", "failed", "uncertain"))
        missed = self.count("missed")
        held = f", {len(self.held)} held (send --due --catch-up sends them)" if self.held else ""
        return counts + (f", {missed} missed" if missed else "") + held

    @property
    def exit_code(self) -> ExitCode:
        if self.count("invalid") or self.errors:
            return ExitCode.BAD_INPUT
        undelivered = any(o.state in UNDELIVERED for o in self.outcomes)
        return ExitCode.UNDELIVERED if undelivered or self.stopped_by else ExitCode.OK


@dataclass
class Dispatcher:
    """Everything a pass needs; the clock is passed to each call, the transport is opened per pass."""

    config: Config
    talks: list[Talk]
    ledger: Ledger | None           # None when there is no ledger yet (a preview before any send)
    transport: Transport | None   # opened per pass; None for a dispatcher that only plans
    build: Callable[..., EmailMessage]
    dry_run: bool = False           # read the ledger, write nothing, send to a DryRunTransport
    log: Callable[[str], None] = lambda line: None
    stopping: Callable[[], bool] = lambda: False   # the daemon is shutting down: send no further message
    test_to: str | None = None      # a test send: to this address only, "[TEST] " subject, nothing recorded

    @property
    def recording(self) -> Ledger | None:
        """The ledger to write to: none in a dry run or a test send."""
        return None if self.dry_run or self.test_to else self.ledger

    def plan(self, now: datetime, records: dict | None = None) -> Plan:
        """The plan at `now` from the talks and the ledger."""
        if records is None:
            records = self.ledger.records() if self.ledger else {}
        announced = self.ledger.announced() if self.ledger else {}
        created = self.ledger.created if self.ledger else clock()  # a first send creates the ledger now
        return plan_messages(self.config, self.talks, records, announced, now, held_before(created, now))

    def due_pass(self, now: datetime, catch_up: bool = False) -> PassResult:
        """Send every message whose time has come; record the ones whose window closed.

        Held messages (due before a new ledger was created) go only with catch_up; a talk that
        looks renamed gets nothing, and its due messages are errors of the pass.
        """
        recovered = self.recording.recover_abandoned(now) if self.recording else []
        records = self.ledger.records() if self.ledger else {}
        plan = self.plan(now, records)
        result = PassResult(warnings=plan.warnings)
        by_key = {m.key: m for m in plan.messages + plan.history}
        for key, talk_id, kind in recovered:
            self.log(f"uncertain {talk_id} {kind}: {ABANDONED}")
            if key in by_key:
                result.outcomes.append(Outcome(by_key[key], "uncertain", ABANDONED))
        for message in plan.messages:
            record = records.get(message.key)
            if message.state == "missed" and (record is None or record.state == "retry"):
                if self.recording and not self.recording.record(message, "missed", now, error=MISSED_DETAIL,
                                                                only_from=("retry",)):
                    continue   # another process sent (or settled) it since this pass read the ledger
                self.log(f"missed    {message.talk_id} {message.kind}: {MISSED_DETAIL}")
                result.outcomes.append(Outcome(message, "missed", MISSED_DETAIL))
        result.held = [m for m in plan.messages if m.state == "held" and not catch_up]
        blocked = {m.talk_id for m in plan.messages if m.talk_id in plan.renames and m.state == "due"}
        result.errors = [str(plan.renames[talk_id]) for talk_id in sorted(blocked)]
        self.deliver_all(sendable(plan, records, now, catch_up), now, Mode.DUE, result)
        return result

    def deliver_all(self, messages: list[PlannedMessage], now: datetime, mode: Mode,
                    result: PassResult | None = None) -> PassResult:
        """Deliver messages over one transport session, stopping at a failure of the connection itself."""
        result = result or PassResult()
        if not messages:
            return result
        login = self._login_fingerprint()
        if login is not None and (refused := waiting_login(self.ledger, login, clock())):
            result.stopped_by, result.refused_login = refused.waiting(), refused
            self.log(f"login skipped: {result.stopped_by}")
            return result
        talks = with_course_posts(self.talks)
        with self.transport:
            for message in messages:
                if self.stopping():
                    result.stopped_by = "shutting down before the next message"
                    break
                outcome = self.deliver(message, now, mode, talks.get(message.talk_id))
                result.outcomes.append(outcome)
                if outcome.stops_pass:
                    result.stopped_by = outcome.detail
                    if outcome.state == "due" and login is not None and self.recording:
                        # Fingerprinted again: a token source may have refreshed its cache in this pass.
                        login = self._login_fingerprint() or login
                        refused = remember_refused(self.ledger, login, outcome.detail, clock())
                        result.stopped_by, result.refused_login = refused.waiting(), refused
                    break
        if login is not None and result.count("sent") and self.recording:
            forget_refused(self.ledger)
        return result

    def _login_fingerprint(self) -> str | None:
        """The fingerprint of the transport's login (settings and secret), when it logs in to a server.

        A test send writes nothing, but still waits out a refused login (a locked account helps no one).
        """
        settings = getattr(self.transport, "login_settings", None)
        if self.ledger is None or self.dry_run or settings is None:
            return None
        if self.recording is None and last_refused(self.ledger) is None:
            return None
        return fingerprint(self.ledger, *settings())

    def deliver(self, message: PlannedMessage, now: datetime, mode: Mode = Mode.DUE,
                talk: Talk | None = None) -> Outcome:
        """Claim, build, send and record one message (of `talk`, looked up by its id if not given).

        The claim comes first, so that daemons sharing a ledger build only the messages they send.
        A template that fails to render is bad input, reported with its path:line: the claim is
        given back and the message stays due instead of becoming `failed`.
        """
        if mode == Mode.FORCE or self.test_to:
            message = replace(message, message_id=fresh_message_id(message.key, self.config.series.domain, now))
        talk = talk or with_course_posts(self.talks)[message.talk_id]
        if self.test_to or self.dry_run:
            email = self._build(talk, message, now)
            if isinstance(email, Outcome):
                return email
            if self.test_to:
                return self._test_send(message, email)
            if mode != Mode.PREVIEW and not claimable(mode, message.state):
                return Outcome(message, "refused", REFUSED)
            self.transport.send(email)
            return Outcome(message, "dry-run", email=email)
        if self.ledger and not self.ledger.claim(message, now, mode):
            return Outcome(message, "refused", REFUSED)
        try:
            email = self._build(talk, message, now)
        except BaseException:
            self.ledger.release(message)
            raise
        if isinstance(email, Outcome):  # nothing to send: the message stays as it was
            self.ledger.release(message)
            return email
        try:
            self.transport.send(email)
        except TemporaryFailure as error:
            wait = retry_delay(self.ledger.attempts(message.key))
            outcome = self._record(message, "retry", now, str(error), next_try=now + wait, email=email)
            outcome.stops_pass = error.connection
            return outcome
        except PermanentFailure as error:
            if error.connection:  # a refused login, a certificate, no STARTTLS: not this message's fault
                self.ledger.release(message)
                self.log(f"due       {message.talk_id} {message.kind}: not sent: {error}")
                return Outcome(message, "due", str(error), stops_pass=True)
            outcome = self._record(message, "failed", now, str(error), email=email)
            return outcome
        except UncertainDelivery as error:
            return self._record(message, "uncertain", now, str(error), email=email)
        except Exception:  # raised before the data was handed over (only UncertainDelivery comes after)
            self.ledger.release(message)
            raise
        facts = {**talk.facts, "identity": identity(talk)} if message.kind in FACT_KINDS else None
        message_id = str(email["Message-ID"])
        self.ledger.record(message, "sent", now, message_id=message_id, facts=facts)
        self.log(f"sent      {message.talk_id} {message.kind} {message_id}")
        return Outcome(message, "sent", message_id=message_id)

    def _build(self, talk: Talk, message: PlannedMessage, now: datetime) -> EmailMessage | Outcome:
        """The message, or the `invalid` outcome that says why it cannot be built."""
        try:
            return self.build(talk, message, now)
        except AnnouncerError as error:
            detail = str(error)
        except (ValueError, OverflowError) as error:  # what the email and icalendar packages raise for a
            # value that got past validation: this message is not sent, the pass goes on to the others
            detail = f"cannot build the message ({type(error).__name__}: {' '.join(str(error).split())[:200]})"
        self.log(f"invalid   {message.talk_id} {message.kind}: {detail}")
        return Outcome(message, "invalid", detail)

    def _test_send(self, message: PlannedMessage, email: EmailMessage) -> Outcome:
        """Send the message to the test address alone (SPEC 8.5 "A test send"); record nothing."""
        del email["To"], email["Approved"]
        email["To"] = self.test_to
        subject = str(email["Subject"])
        email.replace_header("Subject", "[TEST] " + subject)
        message_id = str(email["Message-ID"])
        try:
            self.transport.send(email)
        except DeliveryError as error:
            state = "due" if error.connection else "failed" if isinstance(error, PermanentFailure) else \
                "uncertain" if isinstance(error, UncertainDelivery) else "retry"
            self.log(f"{state:<9} {message.talk_id} {message.kind}: test send to {self.test_to}: {error}")
            return Outcome(message, state, str(error), stops_pass=error.connection, message_id=message_id)
        self.log(f"sent      {message.talk_id} {message.kind} {message_id} (test send to {self.test_to})")
        return Outcome(message, "sent", f"test send to {self.test_to}, not recorded", message_id=message_id)

    def _record(self, message: PlannedMessage, state: str, now: datetime, detail: str, *,
                next_try: datetime | None = None, email: EmailMessage | None = None) -> Outcome:
        message_id = str(email["Message-ID"]) if email is not None else None
        if self.recording:
            self.recording.record(message, state, now, message_id=message_id, error=detail, next_try=next_try)
        self.log(f"{state:<9} {message.talk_id} {message.kind}: {detail}")
        return Outcome(message, state, detail, message_id=message_id)


def make_dispatcher(loaded: Loaded, ledger: Ledger | None, dry_run: bool, log=None,
                    test_to: str | None = None) -> Dispatcher:
    """The dispatcher for a series: the configured transport to send, a DryRunTransport to preview;
    with test_to, a test send to that address alone (no Approved header, nothing recorded)."""
    from announcer.compose.message import build_message
    from announcer.compose.render import Renderer
    from announcer.deliver.secrets import approved_password, smtp_password
    from announcer.deliver.transport import DryRunTransport, open_transport

    config = loaded.config
    approved = None if test_to else approved_password(config, dry_run)
    transport = DryRunTransport() if dry_run else open_transport(config, smtp_password(config))
    renderer = Renderer(config)
    if not dry_run:  # a template that does not compile stops a send before anything goes out
        kinds = [rule.kind for rule in config.messages] + ["update", "cancellation"]
        if problems := renderer.check(dict.fromkeys(kinds)):
            raise InputError(problems)

    def build(talk: Talk, message: PlannedMessage, now: datetime):
        return build_message(config, talk, message, now=now, renderer=renderer, approved=approved)

    return Dispatcher(config=config, talks=loaded.talks, ledger=ledger, transport=transport, build=build,
                      dry_run=dry_run, log=log or (lambda line: None), test_to=test_to)
