"""The send ledger: claim a message before sending it, record the outcome after.

A series keeps it in SQLite (a file beside its config, the default) or, with `[state] url`, in a
PostgreSQL database that many series and several hosts share (SPEC 8.4).
"""

from __future__ import annotations

from announcer.deliver.ledger.base import (
    ABANDONED,
    FIRST_RETRY,
    LEASE,
    Event,
    Ledger,
    clock,
    retry_delay,
    stamp,
    unstamp,
)
from announcer.deliver.ledger.sqlite import SqliteLedger
from announcer.sources.config import Config

__all__ = ["ABANDONED", "FIRST_RETRY", "LEASE", "Event", "Ledger", "SqliteLedger", "clock", "open_ledger",
           "retry_delay", "stamp", "unstamp"]


def open_ledger(config: Config, write: bool) -> Ledger | None:
    """The series' ledger; for read-only commands None when a SQLite one does not exist yet
    (nothing was sent). A PostgreSQL ledger is opened either way (the database holds every
    series), but only a write dates the series' ledger from now (messages due before it are held).

    Callers write `with open_ledger(...) or nullcontext() as ledger:` so it is closed either way.
    """
    if config.postgres is not None:
        from announcer.deliver.ledger.postgres import PostgresLedger  # psycopg: an optional extra

        return PostgresLedger(config.postgres, config.path, write, config.series.domain)
    if not write and not config.ledger_path.exists():
        return None
    return SqliteLedger(config.ledger_path)
