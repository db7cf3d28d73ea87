"""`announcer --config DIR daemon`: every series of a folder in one process (SPEC 8.4).

Each series keeps its own DaemonCore (config, talks, ledger, dispatcher; run/folder.py holds
them), but they share one APScheduler timer and one executor thread: the timer wakes for the
earliest due message across all series, and a pass runs only the series that changed on disk or
have a message due, so a series at rest costs nothing between its due times. Changes come from
the operating system through watchfiles (inotify) where it works; with ANNOUNCER_WATCH=poll, or
when watchfiles is missing or fails, the folders are polled as the one-series daemon polls its
own. A heartbeat every 60 s re-lists the folder, tries again the series it could not serve (a
lock, a database out of reach), and runs any series whose wake-up passed: it does not re-plan
the series at rest.
"""

from __future__ import annotations

import itertools
import os
import resource
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta, timezone
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from announcer.errors import LockedError
from announcer.run.daemon import (HEARTBEAT_SECONDS, NEAR_SECONDS, POLL_SECONDS, SIGNAL_SECONDS, LogLines, Wake,
                                  route_scheduler_warnings, utc_now)
from announcer.run.folder import FolderCore
from announcer.run.lock import notify_systemd
from announcer.run.signals import Signals
from announcer.run.watch import FolderWatch
from announcer.sources.folder import CONFIG_NAME

WATCH_ENV = "ANNOUNCER_WATCH"     # "poll": stat the files every 2 s instead of asking the kernel
LEDGER_SUFFIXES = (".db", ".db-journal", ".db-wal", ".db-shm", ".lock")


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
