"""`announcer daemon`: the same due pass as `send --due`, run on an APScheduler timer.

The ledger decides what was sent; APScheduler only says when to look (reference/scheduling.md
sections 0 and 3.1). Passes run on one executor thread, so two never overlap: a heartbeat every
60 s (the fallback rescan), a wake-up at the next due time, and a nudge when the watched files
change or SIGHUP arrives. The main thread polls the files and turns signals into actions.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from announcer.deliver.dispatch import Dispatcher, PassResult, make_dispatcher
from announcer.deliver.ledger import FIRST_RETRY, open_ledger
from announcer.errors import AnnouncerError, InputError
from announcer.plan import ready_at
from announcer.run.lock import lock_ledger, notify_systemd
from announcer.run.signals import Signals
from announcer.run.watch import FolderWatch, Stamp, TalkFiles, file_stamp, snapshot
from announcer.sources.config import Config, find_config, load_config
from announcer.sources.series import Loaded
from announcer.sources.talk import Talk

HEARTBEAT_SECONDS = 60      # the fallback rescan: also catches a wall clock that jumped (suspend)
POLL_SECONDS = 2.0          # how often the main thread stats the watched files (~2 ms per 1,000)
SIGNAL_SECONDS = 0.2        # how soon the main thread notices a signal's flag
NEAR_SECONDS = 1.0          # a due time closer than this is waited for inside the pass's thread
CATCH_UP_PASSES = 3         # passes in a row for messages that keep coming due


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(timezone.utc)


class LogLines:
    """Writes each line to stderr with its UTC time; safe to call from any thread."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        stamp = self.clock().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            for line in text.splitlines() or [""]:
                sys.stderr.write(f"{stamp} {line}\n")
            sys.stderr.flush()


@dataclass(frozen=True)
class Wake:
    """When the next pass is wanted, and for which message."""

    at: datetime
    what: str


class DaemonCore:
    """The daemon's state between passes: config, talks (last good per file), ledger, dispatcher.

    Driven with `now` passed in, so tests can run it without threads or a clock.
    """

    def __init__(self, config: Config, log: Callable[[str], None], config_stamp: Stamp | None = None) -> None:
        self.log = log
        self.config = config
        self.config_stamp = config_stamp if config_stamp is not None else file_stamp(config.path)
        self.templates_stamp = snapshot([config.series.templates_dir])
        self.talk_files = TalkFiles(log)
        self.talk_files.refresh(config.series, quiet=True)
        self.paused: str | None = None              # why sending stopped after a failure of the connection
        self.paused_until: datetime | None = None   # for a temporary one: its retry time; else a person must act
        self.stopping = False
        self._warnings: set[str] = set()
        self._held: set[str] = set()                 # keys of held messages already logged
        self.ledger = open_ledger(config, write=True)
        self._ledger_open = True
        try:
            self.dispatcher = self._dispatcher(config)
        except BaseException:
            self.ledger.close()
            raise

    @property
    def talks(self) -> list[Talk]:
        """The talks in force."""
        return self.talk_files.talkset.talks

    def close(self) -> None:
        """Close the ledger."""
        self.rest()

    def rest(self) -> None:
        """Close the ledger until `wake_up`: a folder daemon keeps its series at rest without a
        connection each (a SQLite connection holds about 0.25 MB)."""
        if self._ledger_open:
            self.ledger.close()
            self._ledger_open = False

    def wake_up(self) -> None:
        """Open the ledger again after `rest`, for a pass."""
        if not self._ledger_open:
            self.ledger = open_ledger(self.config, write=True)
            self._ledger_open = True
            self.dispatcher.ledger = self.ledger

    def _dispatcher(self, config: Config) -> Dispatcher:
        dispatcher = make_dispatcher(Loaded(config, self.talk_files.talkset), self.ledger, dry_run=False,
                                     log=lambda line: self.log(re.sub(r"^(\S+) +", r"\1 ", line)))
        dispatcher.stopping = lambda: self.stopping
        return dispatcher

    def refresh(self, force: bool = False) -> bool:
        """Reload whatever changed on disk (everything with force, e.g. on SIGHUP); True if anything did."""
        changed = False
        reparse = force
        stamp = file_stamp(self.config.path)
        if force or stamp != self.config_stamp:
            self.config_stamp = stamp
            old_series = self.config.series
            if self._reload_config():
                changed = True
                reparse = reparse or self.config.series != old_series
                if self.paused and not force:
                    self.resume("the configuration changed")
        changed = self.talk_files.refresh(self.config.series, force=reparse, quiet=reparse) or changed
        if reparse:
            self.log(f"reloaded {len(self.talks)} talks from {self.config.series.talks_dir}")
        templates = snapshot([self.config.series.templates_dir])
        if templates != self.templates_stamp:
            self.templates_stamp = templates
            changed = True
            try:
                self.dispatcher = self._dispatcher(self.config)
                self.log(f"reloaded the templates in {self.config.series.templates_dir}")
            except AnnouncerError as error:
                self.log(f"{error}\ntemplates not reloaded: the previous ones stay in force")
        self.dispatcher.talks = self.talks
        if force and self.paused:
            self.resume("SIGHUP")
        return changed

    def _reload_config(self) -> bool:
        """Load the config file again; on any problem keep the old one in force (and say so)."""
        path = self.config.path
        try:
            config = load_config(path)
            if (config.ledger_path, config.postgres) != (self.config.ledger_path, self.config.postgres):
                raise AnnouncerError(f"{path}: [state] changed: restart the daemon to use another ledger")
            dispatcher = self._dispatcher(config)
        except InputError as error:
            self.log("\n".join(str(p) for p in error.problems))
            self.log(f"{path}: not reloaded: the previous configuration stays in force")
            return False
        except AnnouncerError as error:
            self.log(f"{error}\n{path}: not reloaded: the previous configuration stays in force")
            return False
        self.config, self.dispatcher = config, dispatcher
        self.templates_stamp = snapshot([config.series.templates_dir])
        self.log(f"reloaded {path} ({dispatcher.transport.describe()})")
        return True

    def resume(self, why: str) -> None:
        """Lift a pause caused by a failure of the connection."""
        self.paused = self.paused_until = None
        self.log(f"resumed sending ({why})")

    def run_pass(self, now: datetime) -> PassResult | None:
        """The due pass at `now`, unless sending is paused (None then)."""
        if self.paused and self.paused_until is not None and now >= self.paused_until:
            self.resume("time to retry")
        if self.paused or self.stopping:
            return None
        result = self.dispatcher.due_pass(now)
        lines = [f"warning: {warning}" for warning in result.warnings] + result.errors
        for line in lines:
            if line not in self._warnings:
                self.log(line)
        self._warnings = set(lines)
        for message in result.held:  # each held message is logged once
            if message.key not in self._held:
                self._held.add(message.key)
                self.log(f"held {message.talk_id} {message.kind}: due {message.due:%Y-%m-%dT%H:%M:%SZ}, more than "
                         "an hour before this ledger was created: not sent (`announcer send --due --catch-up` "
                         "sends it while its talk has not started)")
        stop = next((o for o in result.outcomes if o.stops_pass), None)
        if result.refused_login is not None:  # the same settings wait an hour
            self._pause(result.refused_login.reason, result.refused_login.next_try,
                        "the same settings log in again then; a change of the configuration logs in at once")
        elif stop is not None:
            until = None
            if stop.state == "retry":
                record = self.ledger.records().get(stop.message.key)
                until = record.next_try if record and record.next_try else now + FIRST_RETRY
            self._pause(stop.detail or stop.state, until)
        return result

    def _pause(self, why: str, until: datetime | None,
               then: str = "trying again then (or sooner on a configuration change or SIGHUP)") -> None:
        """Stop sending after a failure of the connection: until `until` (a retry time, or the next
        login try after a refused one), or with None until the config changes or SIGHUP."""
        self.paused = why
        self.paused_until = until
        if until is None:
            self.log(f"paused: {why}: nothing more is sent until the configuration changes "
                     "or the daemon gets SIGHUP (systemctl reload)")
            return
        self.log(f"paused until {until:%Y-%m-%dT%H:%M:%SZ}: {why}: {then}")

    def next_wake(self, now: datetime) -> Wake | None:
        """The earliest due time of a pending message or retry; while paused, the end of the pause."""
        if self.paused:
            return Wake(self.paused_until, "retry after a connection failure") if self.paused_until else None
        records = self.ledger.records()
        wakes = []
        plan = self.dispatcher.plan(now, records)
        for message in plan.messages:
            if message.closes <= now or message.talk_id in plan.renames:  # a renamed talk waits for its file
                continue
            at = ready_at(message, records.get(message.key), now)
            if at is not None:
                wakes.append(Wake(at, f"{message.talk_id} {message.kind}"))
        return min(wakes, key=lambda w: w.at, default=None)


class Daemon:
    """The timer and the file watch around a DaemonCore."""

    def __init__(self, core: DaemonCore, watch: FolderWatch, log: Callable[[str], None], verbose: bool = False):
        self.core, self.watch, self.log, self.verbose = core, watch, log, verbose
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            # Set here, not as scheduler keywords (those are ignored): run late rather than drop a
            # wake-up, and never queue the same job twice (reference/scheduling.md 1.4).
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=timezone.utc)
        self.signals = Signals()
        self._lock = threading.Lock()            # guards the two below, and scheduler calls from jobs
        self._reload_wanted = False
        self._stopped = threading.Event()
        self._nudges = itertools.count(1)

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; 0 once the message in hand is finished."""
        with self.signals:
            self._serve()
        self.log("stopped")
        return 0

    def _serve(self) -> None:
        route_scheduler_warnings(self.log)
        try:
            self.scheduler.add_job(self._job, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat",
                                   args=["heartbeat"], next_run_time=utc_now())
            self.scheduler.start()
            notify_systemd(f"READY=1\nSTATUS=serving {len(self.core.talks)} talks")
            self._watch_until_signal()
        finally:
            with self._lock:
                self.core.stopping = True
                self._stopped.set()
            notify_systemd("STOPPING=1")
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)   # lets the pass in hand finish its message

    def _watch_until_signal(self) -> None:
        next_poll = time.monotonic() + POLL_SECONDS
        while self.signals.stop is None:
            if self.signals.hangup():
                with self._lock:
                    self._reload_wanted = True
                self._nudge("SIGHUP: reload")
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + POLL_SECONDS
                self.watch.paths = self.core.config.watched_paths
                changed = self.watch.poll()
                if changed:
                    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
                    self._nudge(f"changed: {', '.join(changed[:3])}{more}")
            time.sleep(SIGNAL_SECONDS)
        self.log(self.signals.stopping_line())

    def _nudge(self, reason: str) -> None:
        """A pass now (each nudge is its own one-off job, queued behind any pass in hand)."""
        self.scheduler.add_job(self._job, id=f"nudge-{next(self._nudges)}", args=[reason])

    def _job(self, reason: str) -> None:
        """Reload what changed, run a pass, and set the wake-up for the next due time."""
        wake = None
        for _ in range(CATCH_UP_PASSES):
            with self._lock:
                if self.core.stopping:
                    return
                force, self._reload_wanted = self._reload_wanted, False
            if self.verbose:
                self.log(f"wake-up: {reason}")
            try:
                self.core.refresh(force=force)
                result = self.core.run_pass(utc_now())
                wake = self.core.next_wake(utc_now())
            except Exception as error:  # a pass must not kill the timer: say what happened, go on
                self.log(f"error: the pass failed: {type(error).__name__}: {error}"
                         + (f"\n{traceback.format_exc()}" if self.verbose else ""))
                return
            if self.verbose:
                self._log_pass(result, wake)
            if wake is None or wake.at - utc_now() > timedelta(seconds=NEAR_SECONDS):
                self._set_wake(wake)
                return
            if self._stopped.wait(max((wake.at - utc_now()).total_seconds(), 0.0)):
                return
            reason = f"due: {wake.what}"
        if wake is not None:
            self._set_wake(Wake(max(wake.at, utc_now() + timedelta(seconds=5)), wake.what))

    def _set_wake(self, wake: Wake | None) -> None:
        with self._lock:  # once stopping, the scheduler is shutting down: leave it alone
            if self.core.stopping:
                return
            if wake is None:
                try:
                    self.scheduler.remove_job("wake")
                except JobLookupError:
                    pass
                return
            self.scheduler.add_job(self._job, "date", run_date=wake.at, id="wake",
                                   args=[f"due: {wake.what}"], replace_existing=True)

    def _log_pass(self, result: PassResult | None, wake: Wake | None) -> None:
        done = "paused, nothing sent" if result is None else result.summary
        after = f"next wake-up {wake.at:%Y-%m-%dT%H:%M:%SZ} ({wake.what})" if wake else "nothing pending"
        self.log(f"pass: {done}; {after}")


def route_scheduler_warnings(log: Callable[[str], None]) -> None:
    """APScheduler's own warnings (e.g. a skipped run) go to the daemon's log, in its format."""

    class ToLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log(f"apscheduler: {record.getMessage()}")

    logger = logging.getLogger("apscheduler")
    logger.handlers[:] = [ToLog(logging.WARNING)]
    logger.propagate = False


def run_daemon(config_option: str | None, verbose: bool = False) -> int:
    """Serve a series until SIGTERM or SIGINT; the exit code (errors at start-up are raised)."""
    log = LogLines()
    path = find_config(config_option)
    stamp = file_stamp(path)
    config = load_config(path)
    lock = lock_ledger(config)
    try:
        watch = FolderWatch(config.watched_paths)
        core = DaemonCore(config, log, config_stamp=stamp)
        try:
            log(f"started: config {path.resolve()}, {len(core.talks)} talks, "
                f"{core.dispatcher.transport.describe()}, ledger {core.ledger.describe()}, pid {os.getpid()}")
            return Daemon(core, watch, log, verbose).run()
        finally:
            core.close()
    finally:
        if lock is not None:
            lock.release()
