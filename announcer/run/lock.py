"""One daemon per SQLite ledger (an flock beside it), and the systemd readiness protocol."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from announcer.errors import LockedError
from announcer.sources.config import Config


class DaemonLock:
    """An exclusive flock on `LEDGER.lock`, holding our PID, for as long as the daemon runs.

    The kernel drops the lock when the process dies, even by SIGKILL, so there is no stale lock
    to clean up; the PID in the file only names the holder (reference/scheduling.md 3.6).
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, ledger_path: Path) -> DaemonLock:
        """Take the lock for this ledger, or raise LockedError naming the process that holds it."""
        path = ledger_path.with_name(ledger_path.name + ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise LockedError(f"{path}: cannot open the lock file: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(f"{path}: another daemon (pid {holder}) is already serving this ledger") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Let go of the lock (the file stays: removing it would race with the next daemon)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_ledger(config: Config) -> DaemonLock | None:
    """The lock for a series' SQLite ledger; None for a PostgreSQL one, which several daemons share."""
    return None if config.postgres is not None else DaemonLock.acquire(config.ledger_path)


def notify_systemd(state: str) -> None:
    """Tell systemd our state (READY=1, STOPPING=1, ...) when it started us as Type=notify."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # the abstract namespace (sd_notify(3))
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        pass
