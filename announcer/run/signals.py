"""The daemons' signals: SIGTERM and SIGINT stop, SIGHUP reloads.

The handler only sets flags, which the main thread reads between its sleeps: when a signal
arrives, the main thread may hold the scheduler's locks (reference/scheduling.md 1.2).
"""

from __future__ import annotations

import signal

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Signals:
    """Installs the handlers for as long as it is entered, and restores the previous ones after."""

    def __init__(self) -> None:
        self.stop: int | None = None      # SIGTERM or SIGINT, once one arrived
        self._hangup = False
        self._previous: dict = {}

    def __enter__(self) -> Signals:
        self._previous = {number: signal.signal(number, self._on_signal) for number in HANDLED}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _on_signal(self, number: int, frame: object) -> None:
        if number == signal.SIGHUP:
            self._hangup = True
        else:
            self.stop = number

    def hangup(self) -> bool:
        """Whether SIGHUP arrived since the last call."""
        arrived, self._hangup = self._hangup, False
        return arrived

    def stopping_line(self) -> str:
        return f"stopping on {signal.Signals(self.stop).name}: finishing the message in hand"
