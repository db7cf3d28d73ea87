"""Refused logins: at most one try an hour with the same settings and secret (SPEC 8.5).

A login the server refused (a wrong password, a certificate that does not verify, no STARTTLS)
is remembered in the ledger by a fingerprint of the settings and the secret: a keyed hash, never
the secret itself. Later passes with the same fingerprint do not log in again for an hour, so a
wrong password under cron does not get the account locked; a change of settings or secret gives
a new fingerprint, which is tried at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from announcer.deliver.ledger import Ledger, stamp, unstamp

RETRY_LOGIN = timedelta(hours=1)
_REFUSED = "refused_login"
_SALT = "fingerprint_salt"


@dataclass(frozen=True)
class RefusedLogin:
    """The last login the server refused: its fingerprint, when, and why (one line)."""

    fingerprint: str
    at: datetime
    reason: str

    @property
    def next_try(self) -> datetime:
        """When the same settings may log in again."""
        return self.at + RETRY_LOGIN

    def waiting(self) -> str:
        """The reason, with when the next try comes: what a skipped pass says."""
        return (f"{self.reason} (login not tried again before {self.next_try:%Y-%m-%d %H:%M} UTC, "
                "or at once after a change of the settings or the password)")


def fingerprint(ledger: Ledger, settings: str, secret: str | None) -> str:
    """A keyed hash of the connection settings and the secret (the key is the ledger's own)."""
    salt = ledger.meta(_SALT) or ledger.first_meta(_SALT, secrets.token_hex(16))
    digest = hashlib.blake2b(key=bytes.fromhex(salt), digest_size=16)
    digest.update(settings.encode("utf-8") + b"\0" + (secret or "").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def last_refused(ledger: Ledger) -> RefusedLogin | None:
    """The last refused login the ledger remembers, if any."""
    text = ledger.meta(_REFUSED)
    if text is None:
        return None
    data = json.loads(text)
    return RefusedLogin(data["fingerprint"], unstamp(data["at"]), data["reason"])


def waiting_login(ledger: Ledger, print_: str, now: datetime) -> RefusedLogin | None:
    """The refused login that keeps these settings from logging in at `now` (the clock), or None."""
    refused = last_refused(ledger)
    if refused is None or refused.fingerprint != print_ or now >= refused.next_try:
        return None
    return refused


def remember_refused(ledger: Ledger, print_: str, reason: str, now: datetime) -> RefusedLogin:
    """Record a refused login (replacing any earlier one)."""
    ledger.set_meta(_REFUSED, json.dumps({"fingerprint": print_, "at": stamp(now), "reason": reason}))
    return RefusedLogin(print_, now, reason)


def forget_refused(ledger: Ledger) -> None:
    """A login worked: forget the refused one."""
    ledger.set_meta(_REFUSED, None)
