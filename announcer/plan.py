"""Which messages are due, pending, missed or changed: pure, with `now` passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
    state: str                # pending, due, sent, retry, failed, uncertain, missed, skipped
    sequence: int             # the ICS SEQUENCE this message carries
    message_id: str           # "<...@domain>", deterministic from the key
    thread_id: str | None     # the announcement's Message-ID (None for the announcement)
    changes: tuple[Change, ...] = ()
