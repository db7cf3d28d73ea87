"""Which messages are due, pending, missed or changed: pure, with `now` passed in."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from announcer.errors import Problem
from announcer.sources.config import Config, MessageRule
from announcer.sources.courses import course_posts
from announcer.sources.talk import Talk
from announcer.sources.timing import due_time, format_duration


class State(StrEnum):
    """What a planned message has come to: the states `plan` and `log` show (SPEC 3, 5, 8.5)."""

    PENDING = "pending"        # not yet due
    DUE = "due"
    HELD = "held"              # fell due long before a new ledger was made: sent only by --catch-up
    CLAIMED = "claimed"        # being sent right now
    SENT = "sent"
    RETRY = "retry"            # a temporary failure: tried again once its wait is over
    FAILED = "failed"          # a permanent failure: needs a person
    UNCERTAIN = "uncertain"    # the server may have it: never re-sent by itself
    MISSED = "missed"          # its talk started before it could be sent
    SKIPPED = "skipped"        # a tentative or cancelled talk
    TBA = "tba"                # an empty slot: no speaker, no title


class Mode(StrEnum):
    """Why a message is being sent, which decides the recorded states it may be claimed from."""

    DUE = "due"                # a pass: send --due, the daemon
    MANUAL = "manual"          # send TALK --kind KIND, send --failed
    FORCE = "force"            # send TALK --kind KIND --force: again, with a fresh Message-ID
    PREVIEW = "preview"        # preview: nothing is claimed


# The recorded states a message may be claimed from, by mode; a message the ledger does not know
# yet can always be claimed. The ledger's claim and a dry run's refusal both follow this.
CLAIMABLE = {
    Mode.DUE: (State.MISSED, State.RETRY),   # a retry once its wait is over: see ready_at
    Mode.MANUAL: (State.MISSED, State.RETRY, State.FAILED),
    Mode.FORCE: (State.MISSED, State.RETRY, State.FAILED, State.SENT, State.UNCERTAIN),
}
RECORDED = (State.CLAIMED, State.SENT, State.RETRY, State.FAILED, State.UNCERTAIN, State.MISSED)


def claimable(mode: Mode, state: str) -> bool:
    """Whether a message whose plan shows `state` may be claimed in this mode."""
    return state not in RECORDED or state in CLAIMABLE.get(mode, ())


@dataclass(frozen=True)
class Change:
    """One announced fact that differs now: field is start, end, location, online_url or status."""

    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class PlannedMessage:
    """One message the series owes its list, and where it stands."""

    talk_id: str
    kind: str                 # announcement, reminder, update, cancellation, or a custom kind
    key: str                  # the ledger key: unique per message as SPEC section 5 defines
    due: datetime             # UTC
    closes: datetime          # UTC: the talk's start; after it the message is missed
    state: State
    sequence: int             # the ICS SEQUENCE this message carries
    message_id: str           # "<...@domain>", deterministic from the key
    thread_id: str | None     # the announcement's Message-ID (None for the announcement)
    changes: tuple[Change, ...] = ()
    sequences: tuple[int, ...] = ()   # a course post's: the SEQUENCE of each session's event


@dataclass(frozen=True)
class Record:
    """What the ledger knows of one message key."""

    key: str
    talk_id: str
    kind: str
    due: datetime
    state: str
    next_try: datetime | None = None
    message_id: str | None = None
    updated: datetime | None = None   # when its state was last recorded: for a sent one, when it went out


@dataclass(frozen=True)
class Announced:
    """The facts the list last heard about a talk, and the SEQUENCE that carried them."""

    facts: dict[str, str | None]
    sequence: int


@dataclass(frozen=True)
class Plan:
    """The messages the talks call for now, the ledger's other rows (e.g. a reminder sent for an
    old start time), and warnings about talks that were announced and are gone."""

    messages: list[PlannedMessage]
    history: list[PlannedMessage]
    warnings: list[str]
    renames: dict[str, Problem] = field(default_factory=dict)   # talk id -> why it looks like a renamed talk
    held_before: datetime | None = None   # messages due before this and never tried are held (a new ledger)


FACT_KINDS = ("announcement", "update", "cancellation")
HOLD_AFTER = timedelta(hours=1)   # a new ledger holds what fell due more than this before it was created
FACT_FIELDS = ("start", "end", "location", "online_url", "status")
_FIRST = {"cancellation": 0, "update": 1}


def message_key(talk: Talk, rule: MessageRule) -> str:
    """The ledger key of a scheduled message: announcements once per talk, others per start."""
    if rule.kind == "announcement":
        return f"{talk.id}/announcement"
    start = talk.start.astimezone(timezone.utc)
    return f"{talk.id}/{rule.kind}/{format_duration(rule.before)}/{start:%Y%m%dT%H%MZ}"


def _id_left(key: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9-]+", ".", key).strip(".")[:64].strip(".")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return f"{readable}.{digest}" if readable else digest


def message_id_for(key: str, domain: str) -> str:
    """The deterministic Message-ID of the message with this ledger key, so previews thread like sends."""
    return f"<{_id_left(key)}@{domain}>"


def fresh_message_id(key: str, domain: str, now: datetime) -> str:
    """A new, unique Message-ID for a forced re-send of the message with this ledger key."""
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"<{_id_left(key)}.{stamp}.{secrets.token_hex(4)}@{domain}>"


def changes_between(old: dict[str, str | None], new: dict[str, str | None]) -> tuple[Change, ...]:
    """The announced facts that differ, in a fixed order."""
    return tuple(Change(name, old.get(name), new.get(name)) for name in FACT_FIELDS
                 if old.get(name) != new.get(name))


def invite_sequence(talk: Talk, announced: Announced | None) -> int:
    """The SEQUENCE of the talk's invite now: 0 until the list heard of it, then the one that
    carried the announced facts, one more once the talk differs from them (the update that says so)."""
    if announced is None:
        return 0
    return announced.sequence + (1 if changes_between(announced.facts, talk.facts) else 0)


def identity(talk: Talk) -> str | None:
    """Speakers and title compared for renames: NFC, case-folded, whitespace collapsed (None for a TBA talk)."""
    if not talk.title or not talk.speakers:
        return None
    speakers = " / ".join(" ".join(speaker.name.split()) for speaker in talk.speakers)
    text = unicodedata.normalize("NFC", f"{speakers}\n{' '.join(talk.title.split())}")
    return unicodedata.normalize("NFC", text.casefold())


def held_before(created: datetime, now: datetime) -> datetime | None:
    """The due time before which a ledger created at `created` holds messages, acting at `now`.

    Nothing is held at a time more than HOLD_AFTER before the ledger was created: such a command
    rehearses a time when the ledger already existed.
    """
    return created - HOLD_AFTER if now >= created - HOLD_AFTER else None


def plan_messages(config: Config, talks: list[Talk], records: dict[str, Record],
                  announced: dict[str, Announced], now: datetime, hold_before: datetime | None = None) -> Plan:
    """Every message the talks call for, with its state at `now` (reads no clock, no file).

    Messages never tried that fell due before `hold_before` (a new ledger's) are `held`.
    """
    planned: list[PlannedMessage] = []
    domain = config.series.domain
    posts = course_posts(talks)
    for talk in [*talks, *posts]:
        closes = talk.start.astimezone(timezone.utc)
        last = None if talk.sessions else announced.get(talk.id)
        changes = changes_between(last.facts, talk.facts) if last else ()
        sequence = invite_sequence(talk, last)
        # A course's sessions thread under the course post, which announces them (SPEC 8.5).
        announcement_key = f"{talk.course.id if talk.course else talk.id}/announcement"
        thread = records.get(announcement_key)
        thread_id = (thread.message_id if thread and thread.message_id
                     else message_id_for(announcement_key, domain))
        sequences = tuple(invite_sequence(s, announced.get(s.id)) for s in talk.sessions)

        def add(kind: str, key: str, due: datetime, talk_changes: tuple[Change, ...] = ()) -> None:
            record = records.get(key)
            planned.append(PlannedMessage(
                talk_id=talk.id, kind=kind, key=key, due=due, closes=closes,
                state=_state(talk, kind, record, due, closes, now, hold_before), sequence=sequence,
                message_id=record.message_id if record and record.message_id else message_id_for(key, domain),
                thread_id=None if key == announcement_key else thread_id, changes=talk_changes,
                sequences=sequences))

        for rule in config.messages:
            if (talk.sessions or talk.course) and not _own_message(talk, rule.kind, records, last):
                continue
            add(rule.kind, message_key(talk, rule), due_time(talk.start, rule.before, rule.at, config.series.timezone))
        if changes:
            if talk.status == "cancelled":
                add("cancellation", f"{talk.id}/cancellation", now, changes)
            else:
                add("update", f"{talk.id}/update/{sequence}", now, changes)

    planned_keys = {m.key for m in planned}
    known = {t.id for t in talks} | {post.id for post in posts}
    history = []
    for record in records.values():
        if record.key not in planned_keys and record.talk_id in known:
            history.append(PlannedMessage(
                talk_id=record.talk_id, kind=record.kind, key=record.key, due=record.due,
                closes=record.due, state=record.state, sequence=0,
                message_id=record.message_id or message_id_for(record.key, domain), thread_id=None))
    planned.sort(key=lambda m: (m.due, _FIRST.get(m.kind, 2), m.talk_id, m.key))
    history.sort(key=lambda m: (m.due, m.talk_id, m.key))

    renames = _renames(talks, announced, known)
    warnings = [f'talk "{talk_id}" was announced but is no longer in {config.series.talks_dir}: nothing more '
                "will be sent for it (to cancel it, keep its file and set status: cancelled)"
                for talk_id in sorted(set(announced) - known - {r.old for r in renames.values()})]
    return Plan(planned, history, warnings, {talk_id: r.problem for talk_id, r in renames.items()}, hold_before)


def _own_message(talk: Talk, kind: str, records: dict[str, Record], last: Announced | None) -> bool:
    """Whether a course post or session has a message of this kind of its own.

    A course post is only an announcement. A session has every other kind, and its own
    announcement only when it was added after the course post went out (the post did not list
    it, so the list hears of it in a post of its own, threaded under the course's).
    """
    if talk.sessions:
        return kind == "announcement"
    if kind != "announcement":
        return True
    post = records.get(f"{talk.course.id}/announcement")
    return last is None and post is not None and post.state == State.SENT


@dataclass(frozen=True)
class _Rename:
    old: str
    problem: Problem


def _renames(talks: list[Talk], announced: dict[str, Announced], known: set[str]) -> dict[str, _Rename]:
    """New talks with the speakers and title of an announced talk whose file is gone (SPEC 8.5)."""
    gone = {announcement.facts.get("identity"): talk_id for talk_id, announcement in sorted(announced.items())
            if talk_id not in known}
    renames = {}
    for talk in talks:
        old = None if talk.id in announced or talk.new_talk else gone.get(identity(talk))
        if old is not None:
            renames[talk.id] = _Rename(old, Problem(talk.path, talk.line, (
                f'talk "{talk.id}" has the speaker and title of "{old}", which was announced and whose file is '
                f'gone: nothing is sent for "{talk.id}" until its file says "id: {old}" (the same talk, renamed: '
                'it keeps its calendar entry and history) or "new_talk: true" (another talk)')))
    return renames


def _state(talk: Talk, kind: str, record: Record | None, due: datetime, closes: datetime,
           now: datetime, hold_before: datetime | None = None) -> State:
    if record is not None and record.state not in (State.RETRY, State.MISSED):
        return State(record.state)
    if talk.is_placeholder:  # an empty slot: listed as TBA, never mailed (SPEC 8.5)
        return State.TBA
    if talk.status == "tentative" or (talk.status == "cancelled" and kind != "cancellation"):
        return State.SKIPPED
    if now >= closes:
        return State.MISSED
    if record is not None and record.state == State.RETRY:
        return State.RETRY
    if now < due:
        return State.PENDING
    return State.HELD if record is None and hold_before is not None and due < hold_before else State.DUE


def ready_at(message: PlannedMessage, record: Record | None, now: datetime, catch_up: bool = False) -> datetime | None:
    """When a pass may send the message: its due time while pending, now when due (or held, with
    catch_up), a retry when its wait is over; None when no pass sends it by itself."""
    if message.state == State.PENDING:
        return message.due
    if message.state == State.DUE or (catch_up and message.state == State.HELD):
        return now
    if message.state == State.RETRY:
        return record.next_try if record is not None and record.next_try is not None else now
    return None


def sendable(plan: Plan, records: dict[str, Record], now: datetime, catch_up: bool = False) -> list[PlannedMessage]:
    """The messages a pass at `now` should send: due ones, retries whose wait is over, and with
    catch_up held ones; none of a talk that looks renamed."""
    ready = []
    for message in plan.messages:
        if message.talk_id in plan.renames:
            continue
        at = ready_at(message, records.get(message.key), now, catch_up)
        if at is not None and at <= now:
            ready.append(message)
    # Cancellations and updates first: a reminder should not reach the list before the news.
    return sorted(ready, key=lambda m: (_FIRST.get(m.kind, 2), m.due))
