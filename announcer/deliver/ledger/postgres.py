"""The PostgreSQL ledger (`[state] url`): every series' ledger in one database, keyed by series,
shared by any number of daemons on any number of hosts (SPEC 8.4).

Same semantics as the SQLite ledger. A claim is one `INSERT ... ON CONFLICT DO UPDATE ... WHERE`:
PostgreSQL locks the row and judges the condition on its latest version, so of two daemons
claiming one message exactly one gets it. Leases are times of the database server's clock, so
hosts whose clocks disagree still agree on which claims ran out.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
from announcer.errors import AnnouncerError, LedgerUnavailable
from announcer.plan import FACT_KINDS, Announced, Mode, PlannedMessage, Record
from announcer.sources.state import Postgres

try:
    import psycopg
except ImportError:  # the optional extra: `pip install 'announcer[postgres]'`
    psycopg = None

SCHEMA = "announcer"     # the ledger's tables live in a schema of their own, named in every statement
MIGRATION_LOCK = 7261    # pg_advisory_xact_lock key: one process at a time upgrades the tables
CONNECT_SECONDS = 10
TIMED_OUT: dict[str, tuple[float, str]] = {}   # URL -> (monotonic time, error) of a connect that timed out


def _tables(db) -> None:
    """Version 1: the tables, keyed by series."""
    db.execute("""
        CREATE TABLE announcer.messages (
            series     TEXT NOT NULL,
            key        TEXT NOT NULL,
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
            lease      TIMESTAMPTZ,
            updated    TEXT NOT NULL,
            PRIMARY KEY (series, key));
        CREATE TABLE announcer.meta (
            series     TEXT NOT NULL,
            name       TEXT NOT NULL,
            value      TEXT NOT NULL,
            PRIMARY KEY (series, name));
        CREATE TABLE announcer.events (
            id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            series     TEXT NOT NULL,
            at         TEXT NOT NULL,
            key        TEXT NOT NULL,
            talk       TEXT NOT NULL,
            kind       TEXT NOT NULL,
            state      TEXT NOT NULL,
            message_id TEXT,
            detail     TEXT);
        CREATE INDEX events_series_talk ON announcer.events (series, talk, id);
        CREATE INDEX events_series_key ON announcer.events (series, key, id);
        CREATE INDEX messages_claims ON announcer.messages (owner) WHERE state = 'claimed';
    """)


MIGRATIONS = (_tables,)   # version N is MIGRATIONS[N - 1]; a new one goes at the end, never edited in place


def connect(place: Postgres, config_path: Path):
    """A connection in autocommit mode (each statement its own transaction); any failure is one
    line naming the URL (never a password)."""
    if psycopg is None:
        raise AnnouncerError(f"{config_path}: [state] url needs PostgreSQL support: "
                             "pip install 'announcer[postgres]'")
    password = os.environ.get(place.password_env) if place.password_env else None
    if place.password_env and password is None:
        raise AnnouncerError(f"{config_path}: password_env names ${place.password_env}, which is not set")
    extra = {"password": password} if password is not None else {}
    timed_out = TIMED_OUT.get(place.url)
    if timed_out and time.monotonic() - timed_out[0] < 3 * CONNECT_SECONDS:
        # A host that drops packets costs the whole timeout: the series after the first (a folder
        # daemon opens one connection per series, one after another) wait for a later pass.
        raise LedgerUnavailable(f"{timed_out[1]} (not tried again yet)")
    began = time.monotonic()
    try:
        db = psycopg.connect(place.url, autocommit=True, connect_timeout=CONNECT_SECONDS,
                             application_name="announcer", **extra)
    except psycopg.OperationalError as error:   # out of reach, or the login refused: try again later
        hint = ": set PGPASSWORD, write ~/.pgpass, or name a variable with [state] password_env" \
            if "no password supplied" in str(error) else ""
        message = f"{place.shown}: cannot open the ledger: {_first_line(error)}{hint}"
        if time.monotonic() - began >= CONNECT_SECONDS / 2:
            TIMED_OUT[place.url] = (time.monotonic(), message)
        raise LedgerUnavailable(message) from None
    except psycopg.Error as error:
        raise AnnouncerError(f"{place.shown}: cannot open the ledger: {_first_line(error)}") from None
    TIMED_OUT.pop(place.url, None)
    return db


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _version(db) -> int:
    """The schema version the database holds (0 before the first announcer connected)."""
    if db.execute("SELECT to_regclass('announcer.migrations')").fetchone()[0] is None:
        return 0
    return db.execute("SELECT COALESCE(MAX(version), 0) FROM announcer.migrations").fetchone()[0]


def _migrate(db, url: str) -> None:
    """Bring the tables up to this version's, each step once, under a lock that makes the other
    daemons starting at the same moment wait (`announcer.migrations` says which steps are done).
    Tables already up to date are only read: a role without the right to create may use them."""
    done = _version(db)
    if done > len(MIGRATIONS):
        raise AnnouncerError(f"{url}: the ledger was written by a newer announcer (schema version {done}, "
                             f"this one knows {len(MIGRATIONS)}): upgrade announcer")
    if done == len(MIGRATIONS):
        return
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        db.execute("CREATE TABLE IF NOT EXISTS announcer.migrations (version INTEGER PRIMARY KEY, "
                   "applied TIMESTAMPTZ NOT NULL DEFAULT now())")
        done = _version(db)   # again, under the lock: another process may have just done it
        for version in range(done + 1, len(MIGRATIONS) + 1):
            MIGRATIONS[version - 1](db)
            db.execute("INSERT INTO announcer.migrations (version) VALUES (%s)", (version,))


class PostgresLedger:
    """One series' ledger in a shared PostgreSQL database (ledger.base.Ledger)."""

    def __init__(self, place: Postgres, config_path: Path, write: bool = True, domain: str | None = None):
        self.place, self.series, self.config_path = place, place.series, config_path
        self.owner = f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:12]}"
        self.in_hand = InHand()
        self._keeper: LeaseKeeper | None = None
        self._db = connect(place, config_path)
        try:
            with self._failures("cannot open the ledger"):
                _migrate(self._db, place.shown)
                if write:  # the series' ledger begins with its first write, as a SQLite file does
                    self._db.execute("INSERT INTO announcer.meta (series, name, value) VALUES (%s, 'created', %s) "
                                     "ON CONFLICT DO NOTHING", (self.series, stamp(clock())))
            self.created = unstamp(self.meta("created")) or clock()
            if domain is not None:
                self._check_owner(domain, write)
        except BaseException:
            self._db.close()
            raise

    def _check_owner(self, domain: str, write: bool) -> None:
        """Refuse a key that another series (another [series] domain) already uses: its messages would
        pass for this series' own (announced, or due an update)."""
        kept = self.first_meta("domain", domain) if write else self.meta("domain")
        if kept not in (None, domain):
            raise AnnouncerError(f"{self.config_path}: [state] series = \"{self.series}\" is the key of another "
                                 f"series in {self.place.shown} (domain {kept}, this one {domain}): "
                                 "give this series a key of its own")

    def describe(self) -> str:
        return f"{self.place.shown} (series {self.series})"

    @property
    def db(self):
        """The connection, made again if the last one broke (the database restarted, the network went)."""
        if self._db.broken or self._db.closed:
            self._db = connect(self.place, self.config_path)
        return self._db

    @contextmanager
    def _failures(self, doing: str = "the ledger's database failed") -> Iterator[None]:
        """A database error is one line naming the ledger, not a traceback."""
        try:
            yield
        except psycopg.OperationalError as error:   # the connection went (a restart, a killed backend)
            raise LedgerUnavailable(f"{self.describe()}: {doing}: {_first_line(error)}") from None
        except psycopg.Error as error:
            raise AnnouncerError(f"{self.describe()}: {doing}: {_first_line(error)}") from None

    def _execute(self, query: str, params: tuple = ()):
        with self._failures():
            return self.db.execute(query, params)

    def meta(self, name: str) -> str | None:
        row = self._execute("SELECT value FROM announcer.meta WHERE series = %s AND name = %s",
                            (self.series, name)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str | None) -> None:
        if value is None:
            self._execute("DELETE FROM announcer.meta WHERE series = %s AND name = %s", (self.series, name))
        else:
            self._execute("INSERT INTO announcer.meta (series, name, value) VALUES (%s, %s, %s) "
                          "ON CONFLICT (series, name) DO UPDATE SET value = excluded.value",
                          (self.series, name, value))

    def first_meta(self, name: str, value: str) -> str:
        self._execute("INSERT INTO announcer.meta (series, name, value) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                      (self.series, name, value))
        return self.meta(name)

    def close(self) -> None:
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None
        self._db.close()

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def records(self) -> dict[str, Record]:
        return records_from(self._execute(
            "SELECT key, talk, kind, due, CASE WHEN state = 'claimed' AND (lease IS NULL OR lease < clock_timestamp()) "
            "THEN 'uncertain' ELSE state END, next_try, message_id, updated "
            "FROM announcer.messages WHERE series = %s", (self.series,)))

    def announced(self) -> dict[str, Announced]:
        return announced_from(self._execute(
            "SELECT talk, facts, sequence FROM announcer.messages WHERE series = %s AND state = 'sent' "
            "AND kind = ANY(%s) AND facts IS NOT NULL ORDER BY sequence, updated", (self.series, list(FACT_KINDS))))

    def claim(self, message: PlannedMessage, now: datetime, mode: Mode = Mode.DUE) -> bool:
        """Take a message for sending; False when another daemon has it or its state forbids it."""
        if self._keeper is None:
            self._keeper = LeaseKeeper(self)
            self._keeper.start()
        cursor = self._execute(
            "INSERT INTO announcer.messages AS messages "
            "(series, key, talk, kind, due, state, attempts, owner, lease, updated) "
            "VALUES (%s, %s, %s, %s, %s, 'claimed', 1, %s, clock_timestamp() + %s::interval, %s) "
            "ON CONFLICT (series, key) DO UPDATE SET state = 'claimed', attempts = messages.attempts + 1, "
            f"owner = excluded.owner, lease = excluded.lease, updated = excluded.updated WHERE {claimable_sql(mode)}",
            (self.series, message.key, message.talk_id, message.kind, stamp(message.due), self.owner, LEASE,
             stamp(now)))
        if cursor.rowcount == 1:
            self.in_hand.add(message.key)
        return cursor.rowcount == 1

    def release(self, message: PlannedMessage) -> None:
        """Give back this run's claim on a message not handed over: back to its last recorded state."""
        try:
            with self._failures(), self.db.transaction():
                row = self.db.execute("SELECT state FROM announcer.events WHERE series = %s AND key = %s "
                                      "ORDER BY id DESC LIMIT 1", (self.series, message.key)).fetchone()
                if row is None:
                    self.db.execute("DELETE FROM announcer.messages WHERE series = %s AND key = %s "
                                    "AND state = 'claimed' AND owner = %s", (self.series, message.key, self.owner))
                else:
                    self.db.execute("UPDATE announcer.messages SET state = %s, owner = NULL, lease = NULL, "
                                    "attempts = attempts - 1 WHERE series = %s AND key = %s AND state = 'claimed' "
                                    "AND owner = %s", (row[0], self.series, message.key, self.owner))
        finally:
            self.in_hand.discard(message.key)

    def attempts(self, key: str) -> int:
        row = self._execute("SELECT attempts FROM announcer.messages WHERE series = %s AND key = %s",
                            (self.series, key)).fetchone()
        return row[0] if row else 0

    def record(self, message: PlannedMessage, state: str, now: datetime, *, message_id: str | None = None,
               facts: dict | None = None, error: str | None = None, next_try: datetime | None = None,
               only_from: tuple[str, ...] | None = None) -> bool:
        """Record what became of a message (and add it to its history), in one transaction; with
        only_from, only if the ledger does not know it or holds it in one of those states."""
        try:
            with self._failures(), self.db.transaction():
                inserted = self.db.execute(
                    "INSERT INTO announcer.messages (series, key, talk, kind, due, state, updated) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (series, key) DO NOTHING",
                    (self.series, message.key, message.talk_id, message.kind, stamp(message.due), state,
                     stamp(now))).rowcount
                condition = " AND state = ANY(%s)" if only_from is not None and not inserted else ""
                updated = self.db.execute(
                    "UPDATE announcer.messages SET state = %s, updated = %s, owner = NULL, lease = NULL, "
                    "last_error = %s, next_try = %s, message_id = COALESCE(%s, message_id), "
                    "sequence = COALESCE(%s, sequence), facts = COALESCE(%s, facts) "
                    "WHERE series = %s AND key = %s" + condition,
                    (state, stamp(now), error, next_try and stamp(next_try), message_id,
                     message.sequence if facts is not None else None,
                     json.dumps(facts, sort_keys=True) if facts is not None else None, self.series, message.key)
                    + ((list(only_from),) if condition else ())).rowcount
                if updated:
                    self.db.execute(
                        "INSERT INTO announcer.events (series, at, key, talk, kind, state, message_id, detail) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (self.series, stamp(now), message.key, message.talk_id, message.kind, state, message_id,
                         error))
            return bool(updated)
        finally:
            self.in_hand.discard(message.key)

    def recover_abandoned(self, now: datetime) -> list[tuple[str, str, str]]:
        """Claims whose lease ran out (their daemon died, on any host) become `uncertain`. Of two
        daemons doing this at once, the row lock lets one record each."""
        with self._failures(), self.db.transaction():
            rows = self.db.execute(
                "UPDATE announcer.messages SET state = 'uncertain', owner = NULL, lease = NULL, updated = %s, "
                "last_error = %s WHERE series = %s AND state = 'claimed' "
                "AND (lease IS NULL OR lease < clock_timestamp()) RETURNING key, talk, kind, message_id",
                (stamp(now), ABANDONED, self.series)).fetchall()
            if rows:
                self.db.cursor().executemany(
                    "INSERT INTO announcer.events (series, at, key, talk, kind, state, message_id, detail) "
                    "VALUES (%s, %s, %s, %s, %s, 'uncertain', %s, %s)",
                    [(self.series, stamp(now), key, talk, kind, message_id, ABANDONED)
                     for key, talk, kind, message_id in rows])
        return [(key, talk, kind) for key, talk, kind, _ in sorted(rows)]

    def history(self, talk_id: str | None = None) -> list[Event]:
        query = "SELECT at, talk, kind, state, message_id, detail FROM announcer.events WHERE series = %s"
        rows = (self._execute(query + " AND talk = %s ORDER BY id", (self.series, talk_id)) if talk_id
                else self._execute(query + " ORDER BY id", (self.series,)))
        return [Event(unstamp(at), talk, kind, state, message_id, detail)
                for at, talk, kind, state, message_id, detail in rows]


class LeaseKeeper(threading.Thread):
    """Renews the leases of a ledger's claims in hand every quarter of LEASE, on its own connection,
    until stopped; a database out of reach is tried again next round (past the lease, the claims
    become uncertain)."""

    def __init__(self, ledger: PostgresLedger) -> None:
        super().__init__(name="announcer-lease", daemon=True)
        self.ledger = ledger
        self._stopped = threading.Event()

    def run(self) -> None:
        db = None
        while not self._stopped.wait(LEASE.total_seconds() / 4):
            keys = self.ledger.in_hand.keys()
            if not keys:
                continue
            try:
                if db is None or db.broken:
                    db = connect(self.ledger.place, self.ledger.config_path)
                db.execute("UPDATE announcer.messages SET lease = clock_timestamp() + %s::interval "
                           "WHERE series = %s AND key = ANY(%s) AND owner = %s AND state = 'claimed'",
                           (LEASE, self.ledger.series, keys, self.ledger.owner))
            except (AnnouncerError, psycopg.Error):
                db = None
        if db is not None:
            db.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join()
