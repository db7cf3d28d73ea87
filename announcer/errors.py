"""The one error hierarchy, the problems it carries and the exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Process exit codes (SPEC section 3)."""

    OK = 0
    BAD_INPUT = 1
    USAGE = 2
    UNDELIVERED = 3
    INTERRUPTED = 130


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in an input file, with its place."""

    path: Path | str
    line: int | None
    message: str
    warning: bool = False

    def __str__(self) -> str:
        place = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        prefix = "warning: " if self.warning else ""
        return f"{place}: {prefix}{self.message}"


class AnnouncerError(Exception):
    """Base of every error announcer reports to a person: one line, no traceback."""

    exit_code = ExitCode.BAD_INPUT


class InputError(AnnouncerError):
    """Bad configuration, talks or templates: carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = [p for p in problems if not p.warning]
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self):  # pickled from a worker process (cores.py) by its problems, not its text
        return type(self), (self.problems,)


class UsageError(AnnouncerError):
    """A command was called with options that do not fit together."""

    exit_code = ExitCode.USAGE


class Unavailable(AnnouncerError):
    """A series cannot be served now, through no fault of its files: a folder daemon tries it again
    at its heartbeat."""


class LockedError(Unavailable):
    """Another process holds the daemon lock on this ledger."""


class LedgerUnavailable(Unavailable):
    """The ledger's database cannot be reached, or refuses the login."""


class DeliveryError(AnnouncerError):
    """A message could not be handed to the transport.

    `connection` is True when the failure is the server's or the settings' (refused connection,
    authentication, certificate, STARTTLS), not this message's: the pass stops there instead of
    trying every message against the same wall.
    """

    exit_code = ExitCode.UNDELIVERED

    def __init__(self, message: str, *, connection: bool = False):
        super().__init__(message)
        self.connection = connection


class TemporaryFailure(DeliveryError):
    """Try again later: 4xx, refused connection, timeout, drop before the data was sent."""


class PermanentFailure(DeliveryError):
    """Needs a person: 5xx, failed authentication, bad certificate, no STARTTLS."""


class UncertainDelivery(DeliveryError):
    """The server may have the message (connection lost after the data was sent)."""
