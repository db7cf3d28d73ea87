"""The daemon as a real process, for the tests that start one (tests/conftest.py's start_daemon)."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import announcer_command

NEW_YORK = ZoneInfo("America/New_York")


class DaemonProcess:
    """`python -m announcer --config PATH daemon`, with its stderr collected line by line."""

    def __init__(self, config: Path, *options: str, env: dict[str, str] | None = None,
                 lease_seconds: float | None = None) -> None:
        self.proc = subprocess.Popen([*announcer_command(lease_seconds), "--config", str(config), "daemon", *options],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10.0, after: int = 0) -> int:
        """The index of the first log line from `after` on that matches; fails after `timeout` s."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, line in enumerate(self.lines[after:], start=after):
                if regex.search(line):
                    return index
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        pytest.fail(f"no log line matching {pattern!r} (exit code {self.proc.poll()}):\n{self.log}")

    def stop(self, number: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send a signal and wait for the exit code."""
        self.proc.send_signal(number)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


def wait_until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# A talk two days ahead is announced half an hour before now: recent enough that a new ledger
# sends it (one due more than an hour before the ledger was created would be held).
RECENT = [{"kind": "announcement", "before": "2d30m"}, {"kind": "reminder", "before": "1h"}]


def local_minute(moment: datetime) -> str:
    """A start time as a talk file writes it: the minute, in the series' zone."""
    return moment.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")
