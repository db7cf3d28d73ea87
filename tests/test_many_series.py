"""A folder of series (SPEC 8.4): one daemon for all of them, and check/plan/log/send on the folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from announcer.cli import app
from daemon_process import local_minute

UTC = timezone.utc

CONFIG = """\
[series]
name = "{name} Seminar"
timezone = "America/New_York"
domain = "{name}.example.edu"

[mail]
from = "{name} <{name}-organizers@example.edu>"
to = ["{name}@lists.example.edu"]

[[messages]]
kind = "announcement"
before = "2d30m"

[[messages]]
kind = "reminder"
before = "1h"

[delivery]
transport = "maildir"
maildir = "outbox"
"""

BROKEN = """\
[series]
name = "Broken Seminar"
timezone = "Nowhere/Zone"
"""


def add_series(folder: Path, name: str, talks: dict[str, datetime]) -> Path:
    """A series folder with one talk file per id (a title, a speaker, a start); its config path."""
    (folder / name / "talks").mkdir(parents=True, exist_ok=True)
    for talk_id, start in talks.items():
        add_talk(folder / name, talk_id, start)
    path = folder / name / "announcer.toml"
    path.write_text(CONFIG.format(name=name), encoding="utf-8")
    return path


def add_talk(series: Path, talk_id: str, start: datetime) -> None:
    (series / "talks" / f"{talk_id}.yaml").write_text(
        f"title: Talk {talk_id}\nspeaker: Ada Lovelace\nstart: {local_minute(start)}\n", encoding="utf-8")


def two_days() -> datetime:
    """A start whose announcement (2d30m before) fell due half an hour ago: a new ledger sends it."""
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=2)


@pytest.mark.parametrize("watch", ["inotify", "poll"])
def test_one_daemon_serves_a_folder_through_added_edited_broken_and_removed_series(tmp_path, start_daemon, watch):
    folder = tmp_path / "seminars"
    start = two_days()
    add_series(folder, "mad", {"m1": start})
    add_series(folder, "stats", {"s1": start})
    (folder / "broken").mkdir()
    (folder / "broken" / "announcer.toml").write_text(BROKEN, encoding="utf-8")
    (folder / "not-a-series").mkdir()
    env = {**os.environ, "ANNOUNCER_WATCH": "poll" if watch == "poll" else ""}
    daemon = start_daemon(folder, env=env)
    daemon.wait_for(r"started: .* 2 series served, 0 held by another daemon, 1 broken")
    daemon.wait_for(r" mad: sent m1 announcement <m1\.announcement\.")
    daemon.wait_for(r" stats: sent s1 announcement")
    daemon.wait_for(rf" broken: {re.escape(str(folder / 'broken' / 'announcer.toml'))}:3: \"timezone\": unknown timezone")
    daemon.wait_for(r" broken: not served until .* is fixed; the other series go on")

    written = time.monotonic()
    add_series(folder, "physics", {"p1": start})                       # added while it runs
    daemon.wait_for(r" physics: sent p1 announcement", timeout=10)
    added = time.monotonic() - written
    add_talk(folder / "stats", "s2", start + timedelta(minutes=5))      # edited
    daemon.wait_for(r" stats: sent s2 announcement", timeout=10)
    edited = time.monotonic() - written - added
    print(f"{watch}: a new series sent {added:.2f} s after it was written, a new talk {edited:.2f} s")
    assert added < 10 and edited < 10

    (folder / "broken" / "announcer.toml").write_text(CONFIG.format(name="broken"), encoding="utf-8")  # fixed
    daemon.wait_for(r" broken: serving: config ", timeout=10)
    shutil.rmtree(folder / "mad")                                       # removed
    daemon.wait_for(r" mad: removed: no longer served", timeout=10)
    add_talk(folder / "stats", "s3", start + timedelta(minutes=10))     # the others go on
    daemon.wait_for(r" stats: sent s3 announcement", timeout=10)
    assert daemon.stop() == 0

    general = re.compile(r"^\S+Z (started|stopping|stopped)")
    for line in daemon.lines:
        assert general.match(line) or re.match(r"^\S+Z (mad|stats|broken|physics): ", line), line
    assert "Traceback" not in daemon.log
    assert sum("sent m1 announcement" in line for line in daemon.lines) == 1
    assert len(os.listdir(folder / "stats" / "outbox" / "new")) == 3


def test_a_series_another_daemon_serves_is_skipped_naming_its_pid(tmp_path, start_daemon):
    folder = tmp_path / "seminars"
    start = two_days()
    mad = add_series(folder, "mad", {"m1": start})
    add_series(folder, "stats", {"s1": start})
    single = start_daemon(mad)
    single.wait_for(r"sent m1 announcement")
    many = start_daemon(folder)
    many.wait_for(rf" mad: .*announcer\.db\.lock: another daemon \(pid {single.pid}\) is already serving "
                  r"this ledger: skipped")
    many.wait_for(r"started: .* 1 series served, 1 held by another daemon")
    many.wait_for(r" stats: sent s1 announcement")

    third = subprocess.run([sys.executable, "-m", "announcer", "--config", str(folder), "daemon"],
                           capture_output=True, text=True, timeout=30)
    assert third.returncode == 1
    last = third.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{folder}: no series that loads can be served now: ")
    assert f"(pid {single.pid})" in third.stderr and f"(pid {many.pid})" in third.stderr
    assert "Traceback" not in third.stderr

    assert single.stop() == 0   # the held series is taken up at the next heartbeat (60 s): not waited for here
    assert many.stop() == 0
    assert len(os.listdir(folder / "mad" / "outbox" / "new")) == 1


runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_check_plan_send_and_log_act_on_every_series_of_a_folder(tmp_path):
    folder = tmp_path / "seminars"
    add_series(folder, "mad", {"m1": datetime(2027, 2, 21, 19, tzinfo=UTC)})
    add_series(folder, "stats", {"s1": datetime(2027, 2, 22, 19, tzinfo=UTC)})
    now = "2027-02-19T13:00-05:00"

    result = run("--config", folder, "check", "--now", now)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["mad: 1 talk, 2 messages planned: 0 errors, 0 warnings",
                                          "stats: 1 talk, 2 messages planned: 0 errors, 0 warnings",
                                          "2 series: 2 without errors"]

    result = run("--config", folder, "plan", "--now", now)
    assert result.stdout.splitlines() == [
        "SERIES  DUE (series zone)         TALK  KIND          STATE",
        "mad     Fri 2027-02-19 13:30 EST  m1    announcement  pending",
        "stats   Sat 2027-02-20 13:30 EST  s1    announcement  pending",
        "mad     Sun 2027-02-21 13:00 EST  m1    reminder      pending",
        "stats   Mon 2027-02-22 13:00 EST  s1    reminder      pending"]
    rows = json.loads(run("--config", folder, "plan", "--json", "--now", now).stdout)
    assert rows[0] == {"series": "mad", "talk": "m1", "kind": "announcement", "due": "2027-02-19T13:30:00-05:00",
                       "state": "pending"}
    assert [r["series"] for r in rows] == ["mad", "stats", "mad", "stats"]

    result = run("--config", folder, "send", "--due", "--now", "2027-02-20T13:30-05:00")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("mad: sent      m1 announcement <m1.announcement.")
    assert lines[1] == "mad: 1 sent, 0 retry, 0 failed, 0 uncertain"
    assert lines[2].startswith("stats: sent      s1 announcement <s1.announcement.")

    result = run("--config", folder, "send", "stats/s1", "--kind", "reminder")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("stats: sent      s1 reminder")

    log = run("--config", folder, "log").stdout.splitlines()
    assert [line.split()[:1] + line.split()[5:8] for line in log] == [
        ["mad", "m1", "announcement", "sent"], ["stats", "s1", "announcement", "sent"],
        ["stats", "s1", "reminder", "sent"]]
    only = run("--config", folder, "log", "stats/s1").stdout.splitlines()
    assert [line.split()[6] for line in only] == ["announcement", "reminder"]

    result = run("--config", folder, "log", "s1")
    assert result.exit_code == 1 and "write the talk as SERIES/TALK" in result.stderr
    result = run("--config", folder, "send", "physics/s1", "--kind", "reminder")
    assert result.exit_code == 1 and f'no series "physics" in {folder}' in result.stderr
    result = run("--config", folder, "preview")
    assert result.exit_code == 1 and "is a folder of series: this command takes one series" in result.stderr


def test_a_broken_series_is_one_labelled_problem_and_the_exit_code_is_the_worst(tmp_path):
    folder = tmp_path / "seminars"
    add_series(folder, "mad", {"m1": datetime(2027, 2, 21, 19, tzinfo=UTC)})
    (folder / "broken").mkdir()
    (folder / "broken" / "announcer.toml").write_text(BROKEN, encoding="utf-8")
    now = "2027-02-19T13:00-05:00"
    result = run("--config", folder, "check", "--now", now)
    assert result.exit_code == 1
    assert f"{folder / 'broken' / 'announcer.toml'}:3: \"timezone\": unknown timezone" in result.stderr
    assert result.stdout.splitlines()[-1] == "2 series: 1 without errors, 1 with errors (broken)"
    result = run("--config", folder, "send", "--due", "--now", "2027-02-20T13:30-05:00")
    assert result.exit_code == 1
    assert "mad: 1 sent, 0 retry, 0 failed, 0 uncertain" in result.stdout
    assert f"broken: {folder / 'broken' / 'announcer.toml'}:3:" in result.stderr
    result = run("--config", folder, "plan", "--now", now)
    assert result.exit_code == 1 and "mad     Sun 2027-02-21 13:00 EST  m1    reminder  pending" in result.stdout


def test_a_pass_runs_only_the_series_that_changed_or_have_a_message_due(tmp_path, start_daemon):
    folder = tmp_path / "seminars"
    later = two_days() + timedelta(days=30)   # nothing due for four weeks
    for name in ("a", "b", "c"):
        add_series(folder, name, {f"{name}1": later})
    daemon = start_daemon(folder, "--verbose")
    first = daemon.wait_for(r"wake-up: heartbeat: 3 series")
    daemon.wait_for(r"next wake-up \S+ \(a: a1 announcement\)", after=first)
    add_talk(folder / "b", "b2", later + timedelta(days=1))
    edited = daemon.wait_for(r"wake-up: changed: b: 1 series", timeout=10)
    daemon.wait_for(r"next wake-up", after=edited)
    assert daemon.stop() == 0
    assert not any(line.split(" ", 1)[1].startswith(("a: ", "c: ")) for line in daemon.lines[first:]), daemon.log


def test_without_watchfiles_the_daemon_polls(tmp_path, monkeypatch):
    from announcer.run.folder import FolderCore
    from announcer.run.many import FolderDaemon

    lines: list[str] = []
    monkeypatch.setitem(sys.modules, "watchfiles", None)   # as if it were not installed
    daemon = FolderDaemon(FolderCore(tmp_path, lines.append), lines.append)
    assert not daemon.polling
    daemon._watch_kernel()
    assert daemon.polling
    assert lines == ["watchfiles failed (ModuleNotFoundError: import of watchfiles halted; None in sys.modules): "
                     "polling the folders instead"]
