"""The SQLite ledger: one series' ledger in a file beside its config, for one daemon at a time."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

from announcer.deliver.ledger.base import (
    ABANDONED,
    LEASE,
    Event,
    InHand,
    announced_from,
    claimable_sql,
    clock,
    records_from,
    stamp,
    unstamp,
)
from announcer.errors import AnnouncerError
from announcer.plan import FACT_KINDS, Announced, Mode, PlannedMessage, Record

TABLES = (
    """CREATE TABLE IF NOT EXISTS messages (
        key        TEXT PRIMARY KEY,
        talk       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        due        TEXT NOT NULL,
        state      TEXT NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        next_try   TEXT,
        message_id TEXT,
        sequence   INTEGER,
        facts      TEXT,
        last_error TEXT,
        owner      TEXT,
        lease      TEXT,
        updated    TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS events (
        id         INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        key        TEXT NOT NULL,
        talk       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        state      TEXT NOT NULL,
        message_id TEXT,
        detail     TEXT)""",
    "CREATE INDEX IF NOT EXISTS events_talk ON events (talk, at)",
)


def _tables(db: sqlite3.Connection) -> None:
    """Version 1: the tables. A ledger from before versions were kept has them, perhaps without
    the lease column (it came with leases)."""
    for statement in TABLES:
        db.execute(statement)
    if "lease" not in {row[1] for row in db.execute("PRAGMA table_info(messages)")}:
        db.execute("ALTER TABLE messages ADD COLUMN lease TEXT")


MIGRATIONS = (_tables,)   # version N is MIGRATIONS[N - 1]; a new one goes at the end, never edited in place
LOCK_WAIT = 30  # seconds a ledger operation waits for another process's lock


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the database to WAL (kept in the file), waiting for another process if need be.

    SQLite gives up at once, without its busy timeout, when two connections that both read the
    file want it whole: two runs opening a ledger that does not exist yet at the same moment
    (two cron jobs, or cron and the daemon) met "database is locked" in 6 % of such starts.
    """
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _check_writable(path: Path) -> None:
    """Refuse a ledger that cannot be written: SQLite would open it read-only and fail at the first claim."""
    for place in (path, path.parent):  # the folder too: WAL mode writes its -wal and -shm files there
        if place.exists() and not os.access(place, os.W_OK):
            what = "the file" if place == path else f"its folder {place}"
            raise AnnouncerError(f"{path}: the ledger is read-only ({what} cannot be written): "
                                 "nothing could be recorded, so nothing is sent")


def _check_intact(db: sqlite3.Connection) -> None:
    """Read every page once (a few ms for a year of messages), so that damage is found here, not mid-pass."""
    result = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    if result != "ok":
        raise sqlite3.DatabaseError(" ".join(result.replace("*** in database main ***", "").split()))


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the tables up to this version's, each step once and in order (the `migrations` table
    says which are done), in one transaction: of two processes opening a new ledger, one does it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
        done = db.execute("SELECT COALESCE(MAX(version), 0) FROM migrations").fetchone()[0]
        if done > len(MIGRATIONS):
            raise AnnouncerError(f"{path}: the ledger was written by a newer announcer (schema version {done}, "
                                 f"this one knows {len(MIGRATIONS)}): upgrade announcer")
        for version in range(done + 1, len(MIGRATIONS) + 1):
            MIGRATIONS[version - 1](db)
            db.execute("INSERT INTO migrations (version, applied) VALUES (?, ?)", (version, stamp(clock())))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class SqliteLedger:
    """The send ledger at one path (ledger.base.Ledger). Every write is its own short transaction.

    A claim's owner is an id unique to this run (a PID is reused in containers, a host name changes).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.owner = uuid.uuid4().hex
        self.in_hand = InHand()
        self._keeper: LeaseKeeper | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _check_writable(self.path)
            self.db = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None, check_same_thread=False)
            _use_wal(self.db)
            self.db.execute("PRAGMA synchronous=FULL")
            _check_intact(self.db)
            _migrate(self.db, self.path)
            # A ledger from before this record was kept dates from its first event.
            self.db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('created', "
                            "COALESCE((SELECT MIN(at) FROM events), (SELECT MIN(updated) FROM messages), ?))",
                            (stamp(clock()),))
            self.created = unstamp(self.meta("created"))
        except sqlite3.DatabaseError as error:  # "file is not a database", "database disk image is malformed"
            if isinstance(error, sqlite3.OperationalError):
                raise AnnouncerError(f"{self.path}: cannot open the ledger: {error}") from None
            raise AnnouncerError(f"{self.path}: the ledger is damaged ({error}): restore it from a backup "
                                 "(a new, empty one would send every due message again)") from None
        except (sqlite3.Error, OSError) as error:
            raise AnnouncerError(f"{self.path}: cannot open the ledger: {error}") from None

    def describe(self) -> str:
        return str(self.path)

    def meta(self, name: str) -> str | None:
        """A value kept about the ledger itself (e.g. "created"), or None."""
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str | None) -> None:
        """Keep (or with None, forget) a value about the ledger itself."""
        if value is None:
            self.db.execute("DELETE FROM meta WHERE name = ?", (name,))
        else:
            self.db.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                            "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))

    def first_meta(self, name: str, value: str) -> str:
        """The value kept under `name`, keeping `value` there first if there was none."""
        self.db.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, value))
        return self.meta(name)

    def close(self) -> None:
        """Stop renewing leases and close the database."""
        if self._keeper is not None:
            self._keeper.stop()
        self.db.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def records(self) -> dict[str, Record]:
        """Every message the ledger knows, by key."""
        # A claim whose lease ran out shows as what it is: uncertain (the next pass records it).
        return records_from(self.db.execute(
            "SELECT key, talk, kind, due, CASE WHEN state = 'claimed' AND (lease IS NULL OR lease < ?) "
            "THEN 'uncertain' ELSE state END, next_try, message_id, updated FROM messages", (stamp(clock()),)))

    def announced(self) -> dict[str, Announced]:
        """For each talk, the facts and SEQUENCE of the last message that told the list about it
        (a course post tells it about each of its sessions)."""
        marks = ",".join("?" * len(FACT_KINDS))
        return announced_from(self.db.execute(
            f"SELECT talk, facts, sequence FROM messages WHERE state = 'sent' AND kind IN ({marks}) "
            "AND facts IS NOT NULL ORDER BY sequence, updated", FACT_KINDS))

    def claim(self, message: PlannedMessage, now: datetime, mode: Mode = Mode.DUE) -> bool:
        """Take a message for sending; False when another process has it or its state forbids it.

        mode "due" (a pass) takes new messages, missed ones whose talk moved later, and retries
        whose wait is over; "manual" (send TALK) also failed ones and retries at once; "force" any
        message not in flight. The insert-or-update is one statement: of two processes one wins.
        """
        allowed = claimable_sql(mode)
        if self._keeper is None:
            self._keeper = LeaseKeeper(self.path, self.owner, self.in_hand)
            self._keeper.start()
        cursor = self.db.execute(
            "INSERT INTO messages (key, talk, kind, due, state, attempts, owner, lease, updated) "
            "VALUES (?, ?, ?, ?, 'claimed', 1, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET state = 'claimed', attempts = messages.attempts + 1, "
            f"owner = excluded.owner, lease = excluded.lease, updated = excluded.updated WHERE {allowed}",
            (message.key, message.talk_id, message.kind, stamp(message.due), self.owner,
             stamp(clock() + LEASE), stamp(now)))
        if cursor.rowcount == 1:
            self.in_hand.add(message.key)
        return cursor.rowcount == 1

    def release(self, message: PlannedMessage) -> None:
        """Give back this run's claim on a message that was not handed over: it returns to the state
        its history last recorded (a message never tried before leaves the ledger), so it stays due."""
        self.in_hand.discard(message.key)
        row = self.db.execute("SELECT state FROM events WHERE key = ? ORDER BY id DESC LIMIT 1",
                              (message.key,)).fetchone()
        if row is None:
            self.db.execute("DELETE FROM messages WHERE key = ? AND state = 'claimed' AND owner = ?",
                            (message.key, self.owner))
        else:
            self.db.execute("UPDATE messages SET state = ?, owner = NULL, lease = NULL, attempts = attempts - 1 "
                            "WHERE key = ? AND state = 'claimed' AND owner = ?", (row[0], message.key, self.owner))

    def attempts(self, key: str) -> int:
        row = self.db.execute("SELECT attempts FROM messages WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0

    def record(self, message: PlannedMessage, state: str, now: datetime, *, message_id: str | None = None,
               facts: dict | None = None, error: str | None = None, next_try: datetime | None = None,
               only_from: tuple[str, ...] | None = None) -> bool:
        """Record what became of a message (and add it to its history); with only_from, only if the
        ledger does not know it or holds it in one of those states (False if it did not).

        Only the claim before a send waits for the disk (synchronous=FULL: once-only rests on it).
        This record is written to the WAL without waiting (NORMAL); the next claim's sync carries
        it to the disk. A crash of the process loses nothing; a power cut may lose the last records,
        whose messages then show as claimed, i.e. uncertain and never re-sent, rather than unsent.
        That halves the syncs of a pass (benchmarks/: 0.35 ms a message becomes about 0.2 ms here,
        and on a disk with slow flushes a pass waits for half as many).
        """
        self.in_hand.discard(message.key)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            inserted = self.db.execute(
                "INSERT INTO messages (key, talk, kind, due, state, updated) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (message.key, message.talk_id, message.kind, stamp(message.due), state, stamp(now))).rowcount
            states = list(only_from) if only_from is not None and not inserted else []
            condition = f" AND state IN ({', '.join('?' * len(states))})" if states else ""
            updated = self.db.execute(
                "UPDATE messages SET state = ?, updated = ?, owner = NULL, lease = NULL, last_error = ?, next_try = ?, "
                "message_id = COALESCE(?, message_id), sequence = COALESCE(?, sequence), "
                "facts = COALESCE(?, facts) WHERE key = ?" + condition,
                (state, stamp(now), error, next_try and stamp(next_try), message_id,
                 message.sequence if facts is not None else None,
                 json.dumps(facts, sort_keys=True) if facts is not None else None, message.key, *states)).rowcount
            if updated:
                self.db.execute(
                    "INSERT INTO events (at, key, talk, kind, state, message_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (stamp(now), message.key, message.talk_id, message.kind, state, message_id, error))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self.db.execute("PRAGMA synchronous=FULL")
        return bool(updated)

    def recover_abandoned(self, now: datetime) -> list[tuple[str, str, str]]:
        """Claims whose lease ran out (their process died, on any host) become `uncertain`: the
        server may have the message. Returns their (key, talk, kind); their history records it at `now`."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            rows = self.db.execute(
                "UPDATE messages SET state = 'uncertain', owner = NULL, lease = NULL, updated = ?, last_error = ? "
                "WHERE state = 'claimed' AND (lease IS NULL OR lease < ?) RETURNING key, talk, kind, message_id",
                (stamp(now), ABANDONED, stamp(clock()))).fetchall()
            self.db.executemany(
                "INSERT INTO events (at, key, talk, kind, state, message_id, detail) "
                "VALUES (?, ?, ?, ?, 'uncertain', ?, ?)",
                [(stamp(now), key, talk, kind, message_id, ABANDONED) for key, talk, kind, message_id in rows])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return [(key, talk, kind) for key, talk, kind, _ in sorted(rows)]

    def history(self, talk_id: str | None = None) -> list[Event]:
        """Every recorded outcome, oldest first; only one talk's when talk_id is given."""
        query = "SELECT at, talk, kind, state, message_id, detail FROM events"
        rows = (self.db.execute(query + " WHERE talk = ? ORDER BY id", (talk_id,)) if talk_id
                else self.db.execute(query + " ORDER BY id"))
        return [Event(unstamp(at), talk, kind, state, message_id, detail)
                for at, talk, kind, state, message_id, detail in rows]


class LeaseKeeper(threading.Thread):
    """Renews the leases of one run's claims in hand every quarter of LEASE, on its own connection,
    until stopped."""

    def __init__(self, path: Path, owner: str, in_hand: InHand) -> None:
        super().__init__(name="announcer-lease", daemon=True)
        self.path, self.owner, self.in_hand = path, owner, in_hand
        self._stopped = threading.Event()

    def run(self) -> None:
        """Renew until stopped (the thread's body)."""
        db = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None)
        try:
            while not self._stopped.wait(LEASE.total_seconds() / 4):
                keys = self.in_hand.keys()
                try:
                    db.executemany("UPDATE messages SET lease = ? WHERE key = ? AND owner = ? AND state = 'claimed'",
                                   [(stamp(clock() + LEASE), key, self.owner) for key in keys])
                except sqlite3.Error:
                    pass  # busy for longer than LOCK_WAIT: the next round tries again, well within the lease
        finally:
            db.close()

    def stop(self) -> None:
        """Stop renewing (the process is done with its claims) and wait for the thread."""
        self._stopped.set()
        self.join()
