"""What both ledgers share: times as text, the lease, the retry backoff, a message's history,
which states a mode may claim, and the protocol that dispatch, the daemon and the commands use."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from announcer.plan import CLAIMABLE, Announced, Mode, PlannedMessage, Record

ABANDONED = "the process sending it stopped before recording the outcome"
LEASE = timedelta(seconds=60)   # a claim not renewed for this long belongs to a process that is gone
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)


def clock() -> datetime:
    """The real time (never `--now`): leases and the ledger's creation are facts of the machine."""
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    """A UTC time as fixed-width text, so that text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(text: str | None) -> datetime | None:
    """The inverse of stamp."""
    return None if text is None else datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def retry_delay(attempts: int) -> timedelta:
    """Backoff before the next try: 1 minute, doubling, at most 1 hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LAST_RETRY)


@dataclass(frozen=True)
class Event:
    """One line of a message's history, for `announcer log`."""

    at: datetime
    talk_id: str
    kind: str
    state: str
    message_id: str | None
    detail: str | None


def claimable_sql(mode: Mode) -> str:
    """The condition on a known message's row under which `mode` may claim it (plan.CLAIMABLE),
    in an `INSERT ... ON CONFLICT DO UPDATE ... WHERE` that both SQLite and PostgreSQL read alike."""
    states = ", ".join(f"'{state}'" for state in CLAIMABLE[mode])
    condition = f"messages.state IN ({states})"
    if mode == Mode.DUE:  # a retry once its wait is over (plan.ready_at)
        condition += (" AND (messages.state != 'retry' OR messages.next_try IS NULL "
                      "OR messages.next_try <= excluded.updated)")
    return condition


def records_from(rows: Iterable[tuple]) -> dict[str, Record]:
    """Rows of (key, talk, kind, due, state, next_try, message_id, updated) as Records by key."""
    return {key: Record(key, talk, kind, unstamp(due), state, unstamp(next_try), message_id, unstamp(updated))
            for key, talk, kind, due, state, next_try, message_id, updated in rows}


def announced_from(rows: Iterable[tuple[str, str, int]]) -> dict[str, Announced]:
    """For each talk, the facts and SEQUENCE of the last message that told the list about it, from
    (talk, facts as JSON, sequence) rows of sent messages in sequence order (a course post told
    the list about each of its sessions: Talk.facts)."""
    announced = {}
    for talk, text, sequence in rows:
        facts = json.loads(text)
        for session, session_facts in facts.pop("sessions", {}).items():
            announced[session] = Announced(session_facts, sequence)
        announced[talk] = Announced(facts, sequence)
    return announced


class InHand:
    """The keys of one run's claims that are not recorded or given back yet: the only leases its
    keeper renews. A claim whose outcome could not be recorded (the database went away after the
    send) leaves this set all the same, so its lease runs out and it shows as `uncertain`, rather
    than staying `claimed` for as long as the process lives."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        with self._lock:
            self._keys.add(key)

    def discard(self, key: str) -> None:
        with self._lock:
            self._keys.discard(key)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._keys)


class Ledger(Protocol):
    """The send ledger of one series: SqliteLedger (a file) or PostgresLedger (a shared database).

    A claim names its owner by an id unique to this run and holds a lease that a background
    thread renews while the process runs: a claim whose lease ran out belongs to a process that
    died, on any host, and its message is `uncertain`, never sent again by itself.
    """

    owner: str
    created: datetime

    def describe(self) -> str:
        """Where the ledger is, for log lines."""

    def records(self) -> dict[str, Record]:
        """Every message the ledger knows, by key; a claim whose lease ran out shows as uncertain."""

    def announced(self) -> dict[str, Announced]:
        """For each talk, the facts and SEQUENCE of the last message that told the list about it."""

    def claim(self, message: PlannedMessage, now: datetime, mode: Mode = Mode.DUE) -> bool:
        """Take a message for sending; False when another process has it or its state forbids it."""

    def release(self, message: PlannedMessage) -> None:
        """Give back this run's claim on a message that was not handed over."""

    def attempts(self, key: str) -> int:
        """How many times the message was claimed."""

    def record(self, message: PlannedMessage, state: str, now: datetime, *, message_id: str | None = None,
               facts: dict | None = None, error: str | None = None, next_try: datetime | None = None,
               only_from: tuple[str, ...] | None = None) -> bool:
        """Record what became of a message (and add it to its history). With only_from, only if the
        ledger does not know the message or holds it in one of those states; False if it did not."""

    def recover_abandoned(self, now: datetime) -> list[tuple[str, str, str]]:
        """Claims whose lease ran out become `uncertain`; their (key, talk, kind)."""

    def history(self, talk_id: str | None = None) -> list[Event]:
        """Every recorded outcome, oldest first; only one talk's when talk_id is given."""

    def meta(self, name: str) -> str | None:
        """A value kept about the ledger itself (e.g. "created"), or None."""

    def set_meta(self, name: str, value: str | None) -> None:
        """Keep (or with None, forget) a value about the ledger itself."""

    def first_meta(self, name: str, value: str) -> str:
        """The value kept under `name`, keeping `value` there first if there was none."""

    def close(self) -> None:
        """Stop renewing leases and close the connection."""

    def __enter__(self) -> Ledger: ...

    def __exit__(self, *exc) -> None: ...
