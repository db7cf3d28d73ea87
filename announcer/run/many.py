"""`announcer --config DIR daemon`: every series of a folder in one process (SPEC 8.4).

Each series keeps its own DaemonCore (config, talks, ledger, dispatcher), but they share one
APScheduler timer and one executor thread: the timer wakes for the earliest due message across
all series, and a pass runs only the series that changed on disk or have a message due, so a
series at rest costs nothing between its due times. Changes come from the operating system
through watchfiles (inotify) where it works; with ANNOUNCER_WATCH=poll, or when watchfiles is
missing or fails, the folders are polled as the one-series daemon polls its own. A heartbeat
every 60 s re-lists the folder, tries again the series it could not serve (a lock, a database
out of reach), and runs any series whose wake-up passed: it does not re-plan the series at rest.
"""

from __future__ import annotations

import itertools
import os
import resource
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from announcer.errors import AnnouncerError, InputError, LockedError, Unavailable
from announcer.run.daemon import (HEARTBEAT_SECONDS, NEAR_SECONDS, POLL_SECONDS, SIGNAL_SECONDS, DaemonCore,
                                  LogLines, Wake, route_scheduler_warnings, utc_now)
from announcer.run.lock import DaemonLock, lock_ledger, notify_systemd
from announcer.run.signals import Signals
from announcer.run.watch import FolderWatch, Stamp, file_stamp
from announcer.sources.config import load_config
from announcer.sources.folder import CONFIG_NAME, series_configs

WATCH_ENV = "ANNOUNCER_WATCH"     # "poll": stat the files every 2 s instead of asking the kernel
LEDGER_SUFFIXES = (".db", ".db-journal", ".db-wal", ".db-shm", ".lock")


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


class FolderDaemon:
    """The one timer, the file watch and the signals around a FolderCore."""

    def __init__(self, core: FolderCore, log: Callable[[str], None], verbose: bool = False) -> None:
        self.core, self.log, self.verbose = core, log, verbose
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()}, executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1}, timezone=timezone.utc)
        self.signals = Signals()
        self._lock = threading.Lock()        # guards the fields below
        self._changed: set[str] = set()
        self._reload_all = False
        self._stopping = False
        self._stop_event = threading.Event()
        self._nudges = itertools.count(1)
        self._watched: dict[str, tuple[Path, ...]] = core.watched()
        self.polling = os.environ.get(WATCH_ENV, "").lower() == "poll"

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT."""
        with self.signals:
            self._serve()
        self.log("stopped")
        return 0

    def _serve(self) -> None:
        route_scheduler_warnings(self.log)
        watcher = None
        try:
            if not self.polling:
                watcher = threading.Thread(target=self._watch_kernel, name="watch", daemon=True)
                watcher.start()
            with self._lock:
                self._changed |= set(self.core.slots)   # the first pass: every series
            self.scheduler.add_job(self._job, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat",
                                   args=["heartbeat"], next_run_time=utc_now())
            self.scheduler.start()
            notify_systemd(f"READY=1\nSTATUS=serving {len(self.core.served())} series")
            self._wait_for_signal()
        finally:
            with self._lock:
                self._stopping = True
            self._stop_event.set()
            notify_systemd("STOPPING=1")
            for slot in self.core.served():
                slot.core.stopping = True
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
            if watcher is not None:
                watcher.join(5)

    def _wait_for_signal(self) -> None:
        polls: dict[str, FolderWatch] = {}
        next_poll = time.monotonic() + POLL_SECONDS
        while self.signals.stop is None:
            if self.signals.hangup():
                with self._lock:
                    self._reload_all = True
                self._nudge("SIGHUP: reload every series")
            if self.polling and time.monotonic() >= next_poll:
                self._poll(polls)
                next_poll = time.monotonic() + POLL_SECONDS
            time.sleep(SIGNAL_SECONDS)
        self.log(self.signals.stopping_line())

    def _poll(self, polls: dict[str, FolderWatch]) -> None:
        """The fallback: stat every series' files (and list the folder) as the one-series daemon does."""
        names = self.core.listed()
        watched = self._watched
        changed = {name for name in names | set(polls) if name not in polls or name not in names}
        for name in list(polls):
            if name not in names:
                del polls[name]
        for name in names:
            paths = watched.get(name, (self.core.folder / name / CONFIG_NAME,))
            if name not in polls or polls[name].paths != paths:
                polls[name] = FolderWatch(paths, settle_seconds=0.1)
            elif polls[name].poll():
                changed.add(name)
        if changed:
            self._changed_series(changed, "changed")

    def _watch_kernel(self) -> None:
        """Change notification from the kernel (inotify through watchfiles); polling if it fails."""
        try:
            from watchfiles import watch

            root = self.core.folder.resolve()
            for changes in watch(root, watch_filter=None, debounce=400, step=100, stop_event=self._stop_event,
                                 raise_interrupt=False):
                names = {name for name in (self._series_of(root, Path(p)) for _, p in changes) if name}
                if names:
                    self._changed_series(names, "changed")
        except Exception as error:  # missing, or out of inotify watches: the polling still works
            if not self._stop_event.is_set():
                self.log(f"watchfiles failed ({type(error).__name__}: {error}): polling the folders instead")
                self.polling = True

    def _series_of(self, root: Path, path: Path) -> str | None:
        """The series a changed path matters to, if any (not its ledger, its outbox, editor droppings)."""
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            return None
        if not parts or parts[0].startswith(".") or path.name.endswith(LEDGER_SUFFIXES):
            return None
        name = parts[0]
        if len(parts) == 1 or parts[1:] == (CONFIG_NAME,):
            return name   # the series' folder or its config: added, removed, edited
        watched = self._watched.get(name)
        if watched is None:
            return None
        resolved = _resolved(watched)
        return name if any(path == p or p in path.parents for p in resolved) else None

    def _changed_series(self, names: set[str], why: str) -> None:
        with self._lock:
            self._changed |= names
        self._nudge(f"{why}: {', '.join(sorted(names)[:3])}" + (f" and {len(names) - 3} more" if len(names) > 3 else ""))

    def _nudge(self, reason: str) -> None:
        with self._lock:
            if self._stopping:
                return
            self.scheduler.add_job(self._job, id=f"nudge-{next(self._nudges)}", args=[reason])

    def _job(self, reason: str) -> None:
        """Run the series that changed or are due, then set the one wake-up for the earliest."""
        heartbeat = reason == "heartbeat"
        for _ in range(3):
            with self._lock:
                if self._stopping:
                    return
                names, self._changed = self._changed, set()
                force, self._reload_all = self._reload_all, False
            if force:
                names |= set(self.core.slots)
            if heartbeat:   # the folder's listing, and series that could not be served: cheap
                listed = self.core.listed()
                names |= (listed ^ set(self.core.slots)) | {s.name for s in self.core.slots.values() if s.held}
            now = utc_now()
            names |= self.core.due(now)
            if self.verbose:
                self.log(f"wake-up: {reason}: {len(names)} series")
            try:
                self.core.run(names, now, force=force)
            except Exception as error:
                self.log(f"error: the pass failed: {type(error).__name__}: {error}"
                         + (f"\n{traceback.format_exc()}" if self.verbose else ""))
            self._watched = self.core.watched()
            wake = self.core.next_wake()
            if self.verbose:
                self.log(f"next wake-up {wake.at:%Y-%m-%dT%H:%M:%SZ} ({wake.what})" if wake else "nothing pending")
            if wake is None or wake.at - utc_now() > timedelta(seconds=NEAR_SECONDS):
                self._set_wake(wake)
                return
            if self._stop_event.wait(max((wake.at - utc_now()).total_seconds(), 0.0)):
                return
            reason, heartbeat = f"due: {wake.what}", False
        if wake is not None:
            self._set_wake(Wake(max(wake.at, utc_now() + timedelta(seconds=5)), wake.what))

    def _set_wake(self, wake: Wake | None) -> None:
        with self._lock:
            if self._stopping:
                return
            if wake is None:
                try:
                    self.scheduler.remove_job("wake")
                except JobLookupError:
                    pass
                return
            self.scheduler.add_job(self._job, "date", run_date=wake.at, id="wake", args=[f"due: {wake.what}"],
                                   replace_existing=True)


_RESOLVED: dict[tuple[Path, ...], tuple[Path, ...]] = {}


def _resolved(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """The paths made absolute, as watchfiles reports them (remembered: they are asked for often)."""
    if paths not in _RESOLVED:
        _RESOLVED[paths] = tuple(p.resolve() for p in paths)
    return _RESOLVED[paths]


def _more_files() -> None:
    """Raise the soft limit of open files to the hard one: each series holds its ledger and lock open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def run_folder_daemon(folder: Path, verbose: bool = False) -> int:
    """Serve every series of a folder until SIGTERM or SIGINT; LockedError when none can be served."""
    log = LogLines()
    _more_files()
    core = FolderCore(folder, log)
    try:
        for name in sorted(core.listed()):   # start each series; their first pass is on the timer
            core.update(name)
            if (slot := core.slots.get(name)) and slot.core:
                slot.core.rest()
        held = [slot.held for slot in core.slots.values() if slot.held]
        if held and not core.served():
            raise LockedError(f"{folder}: no series that loads can be served now: {held[0]}")
        watching = "polling" if os.environ.get(WATCH_ENV, "").lower() == "poll" else "inotify (watchfiles)"
        broken = sum(1 for slot in core.slots.values() if slot.failed_stamp is not None)
        locked = sum(isinstance(error, LockedError) for error in held)
        waiting = f", {len(held) - locked} waiting for their database" if len(held) > locked else ""
        log(f"started: folder {folder.resolve()}, {len(core.served())} series served, {locked} held by "
            f"another daemon{waiting}, {broken} broken; watching by {watching}; pid {os.getpid()}")
        return FolderDaemon(core, log, verbose).run()
    finally:
        core.close()
