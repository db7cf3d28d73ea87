"""A folder of series between passes (SPEC 8.4): which series it holds, each one's DaemonCore
and lock, and its passes, driven with `now` passed in. run/many.py puts the timer, the watch and
the signals around it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from announcer.errors import AnnouncerError, InputError, Unavailable
from announcer.run.daemon import HEARTBEAT_SECONDS, DaemonCore, Wake
from announcer.run.lock import DaemonLock, lock_ledger
from announcer.run.watch import Stamp, file_stamp
from announcer.sources.config import load_config
from announcer.sources.folder import CONFIG_NAME, series_configs


@dataclass
class Slot:
    """One series of the folder: served (core and lock), broken (its config's stamp), or held."""

    name: str
    config_path: Path
    core: DaemonCore | None = None
    lock: DaemonLock | None = None
    wake: Wake | None = None
    failed_stamp: Stamp | None = None    # the config that failed to start: tried again once it changes
    held: Unavailable | None = None      # why it cannot be served now (logged once)
    failing: str | None = None           # why its last pass failed (logged once)
    told_local: bool = False             # warned that its ledger is a file beside series in PostgreSQL


class FolderCore:
    """The series of a folder between passes, driven with `now` passed in (no threads, no clock)."""

    def __init__(self, folder: Path, log: Callable[[str], None]) -> None:
        self.folder = folder
        self.log = log
        self.slots: dict[str, Slot] = {}

    def series_log(self, name: str) -> Callable[[str], None]:
        """A log that begins every line with the series' folder name."""
        return lambda text: self.log("\n".join(f"{name}: {line}" for line in text.splitlines() or [""]))

    def listed(self) -> set[str]:
        """The names of the series now in the folder (or of those known, when it cannot be read)."""
        try:
            return set(series_configs(self.folder))
        except AnnouncerError as error:
            self.log(str(error))
            return set(self.slots)

    def served(self) -> list[Slot]:
        return [slot for slot in self.slots.values() if slot.core is not None]

    def update(self, name: str, force: bool = False) -> None:
        """Bring one series up to date with its folder: start, reload, or stop serving it."""
        path = self.folder / name / CONFIG_NAME
        slot = self.slots.get(name)
        if not path.is_file():
            if slot is not None:
                self._stop(slot)
                del self.slots[name]
                self.log(f"{name}: removed: no longer served")
            return
        if slot is None:
            slot = self.slots[name] = Slot(name, path)
        if force:   # SIGHUP: a broken series is tried again too
            slot.failed_stamp = None
        if slot.core is None:
            self._start(slot)
        else:
            slot.core.wake_up()
            slot.core.refresh(force=force)

    def _start(self, slot: Slot) -> None:
        log = self.series_log(slot.name)
        stamp = file_stamp(slot.config_path)
        if stamp is not None and stamp == slot.failed_stamp:
            return   # broken as before: said once already
        try:
            config = load_config(slot.config_path)
            lock = lock_ledger(config)
            try:
                core = DaemonCore(config, log, config_stamp=stamp)
            except BaseException:
                if lock is not None:
                    lock.release()
                raise
        except Unavailable as error:   # another daemon's lock, a database out of reach: tried again later
            if str(slot.held) != str(error):
                log(f"{error}: skipped")
            slot.held = error
            return
        except AnnouncerError as error:
            self._broken(slot, stamp, error)
            return
        slot.core, slot.lock, slot.failed_stamp, slot.held = core, lock, None, None
        log(f"serving: config {slot.config_path}, {len(core.talks)} talk{'s' * (len(core.talks) != 1)}, "
            f"{core.dispatcher.transport.describe()}, ledger {core.ledger.describe()}")
        self._warn_local_ledgers()

    def _warn_local_ledgers(self) -> None:
        """A series with a SQLite ledger in a folder whose other series share PostgreSQL (`init` writes
        one) is sent by every host that serves the folder: say so once."""
        shared = [s.name for s in self.served() if s.core.config.postgres is not None]
        for slot in self.served() if shared else ():
            if slot.core.config.postgres is None and not slot.told_local:
                slot.told_local = True
                self.series_log(slot.name)(
                    f"warning: its ledger is the file {slot.core.config.ledger_path}, while {shared[0]} keeps "
                    "its in PostgreSQL: each host serving this folder would send this series' messages "
                    "(give it [state] url and series)")

    def _broken(self, slot: Slot, stamp: Stamp | None, error: AnnouncerError) -> None:
        lines = [str(p) for p in error.problems] if isinstance(error, InputError) else [str(error)]
        self.series_log(slot.name)("\n".join(lines) + f"\nnot served until {slot.config_path} is fixed; "
                                   "the other series go on")
        slot.failed_stamp = stamp

    def _stop(self, slot: Slot) -> None:
        if slot.core is not None:
            slot.core.close()
        if slot.lock is not None:
            slot.lock.release()
        slot.core = slot.lock = slot.wake = None

    def close(self) -> None:
        """Close every ledger and release every lock."""
        for slot in self.slots.values():
            self._stop(slot)

    def due(self, now: datetime) -> set[str]:
        """The series with a wake-up at or before `now`."""
        return {slot.name for slot in self.slots.values() if slot.wake is not None and slot.wake.at <= now}

    def run(self, names: set[str], now: datetime, force: bool = False) -> None:
        """Update each named series from its files, run its due pass, and keep its next wake-up."""
        for name in sorted(names):
            try:
                self.update(name, force=force)
                slot = self.slots.get(name)
                if slot is None or slot.core is None:
                    continue
                slot.core.run_pass(now)
                slot.wake = slot.core.next_wake(now)
                if slot.failing:
                    self.log(f"{name}: passes work again")
                slot.failing = None
            except Exception as error:  # one series' failure must not stop the others; said once, tried each minute
                if (slot := self.slots.get(name)) is not None:
                    if slot.failing != str(error):
                        self.log(f"{name}: error: the pass failed: {error}: tried again each minute")
                    slot.failing, slot.wake = str(error), Wake(now + timedelta(seconds=HEARTBEAT_SECONDS), "a retry")
            finally:
                slot = self.slots.get(name)
                if slot is not None and slot.core is not None:
                    slot.core.rest()   # its ledger stays closed until its next pass

    def next_wake(self) -> Wake | None:
        """The earliest wake-up of every series, naming its series."""
        earliest = min((s for s in self.slots.values() if s.wake is not None), key=lambda s: s.wake.at, default=None)
        return Wake(earliest.wake.at, f"{earliest.name}: {earliest.wake.what}") if earliest else None

    def watched(self) -> dict[str, tuple[Path, ...]]:
        """Per series, the files and folders whose edits matter (only its config, while it is not served)."""
        return {name: slot.core.config.watched_paths if slot.core else (slot.config_path,)
                for name, slot in self.slots.items()}
