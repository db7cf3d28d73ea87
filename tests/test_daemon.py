"""The daemon: its core driven with an injected clock, then the real process against a real SMTP server."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from announcer.plan import message_id_for
from announcer.run import watch
from announcer.run.daemon import DaemonCore, Wake
from announcer.sources.config import load_config

from conftest import write_config
from daemon_process import RECENT, local_minute, wait_until
from series_files import talk, write_talk
from smtp_server import PASSWORD, MailServer

NEW_YORK = ZoneInfo("America/New_York")
DOMAIN = "seminar.example.org"  # write_config's
UTC = timezone.utc


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sent(result) -> set[tuple[str, str]]:
    return {(o.message.talk_id, o.message.kind) for o in result.outcomes if o.state == "sent"}


# The core, with the clock passed in (no threads, no sleeping)


def test_each_wake_up_falls_on_a_due_time_and_its_pass_sends_exactly_the_due_messages(tmp_path):
    config = write_config(tmp_path)  # Maildir; announcement 7d before at 09:00, reminder 1h before
    write_talk(config, "a.yaml", talk("Before the clocks change", "2027-03-10 14:00"))   # EST
    write_talk(config, "b.yaml", talk("After the clocks change", "2027-03-17 16:00"))    # EDT
    write_talk(config, "c.yaml", talk("Not yet sure", "2027-03-12 10:00", status="tentative"))
    expected = [  # worked out by hand, in UTC
        (utc("2027-03-03 14:00"), {("a", "announcement")}),
        (utc("2027-03-10 14:00"), {("b", "announcement")}),   # 09:00 EST
        (utc("2027-03-10 18:00"), {("a", "reminder")}),
        (utc("2027-03-17 19:00"), {("b", "reminder")}),       # 15:00 EDT
    ]
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)
    now = utc("2027-03-01 00:00")
    seen = []
    try:
        while (wake := core.next_wake(now)) is not None:
            assert sent(core.run_pass(wake.at - timedelta(seconds=1))) == set()
            seen.append((wake.at, sent(core.run_pass(wake.at))))
            assert sent(core.run_pass(wake.at)) == set()  # a second pass at the same time sends nothing
            now = wake.at
    finally:
        core.close()
    assert seen == expected
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 4
    assert [line.split(" <")[0] for line in lines] == [
        "sent a announcement", "sent b announcement", "sent a reminder", "sent b reminder"]


def test_the_daemon_never_wakes_for_nor_sends_an_empty_slot(tmp_path):
    config = write_config(tmp_path)
    write_talk(config, "slot.yaml", "start: 2027-03-10 14:00\n")   # neither speaker nor title
    core = DaemonCore(load_config(config), [].append)
    try:
        assert core.next_wake(utc("2027-03-01 00:00")) is None
        assert [o.state for o in core.run_pass(utc("2027-03-10 18:30")).outcomes] == []
    finally:
        core.close()
    assert not (tmp_path / "outbox" / "new").exists() or not any((tmp_path / "outbox" / "new").iterdir())


def test_a_broken_file_keeps_its_last_good_version_and_a_never_loaded_one_is_left_out(tmp_path, monkeypatch):
    config = write_config(tmp_path)
    good = write_talk(config, "a.yaml", talk("First version", "2027-03-10 14:00"))
    never = write_talk(config, "z.yaml", talk("Broken from the start", "14:00"))
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)
    try:
        assert [t.title for t in core.talks] == ["First version"]
        assert any(line.startswith(f"{never}:3: ") for line in lines)
        assert f"{never}: not loaded; left out until the errors are fixed" in lines

        reads = []
        original = watch.load_talk_file
        monkeypatch.setattr(watch, "load_talk_file", lambda path, series: reads.append(path) or original(path, series))
        assert core.refresh() is False
        assert reads == []  # unchanged files are not read again

        lines.clear()
        write_talk(config, "a.yaml", "title: [unclosed\n")
        assert core.refresh() is True
        assert reads == [good]
        assert any(line.startswith(f"{good}:2: not valid YAML") for line in lines), lines
        assert f"{good}: not loaded; its last good version (1 talk) stays in force until the errors are fixed" in lines
        assert [t.title for t in core.talks] == ["First version"]
        assert core.dispatcher.talks == core.talks

        write_talk(config, "z.yaml", talk("Fixed", "2027-03-11 14:00"))
        write_talk(config, "a.yaml", talk("Second version", "2027-03-10 14:00"))
        core.refresh()
        assert [t.title for t in core.talks] == ["Second version", "Fixed"]
        never.unlink()
        core.refresh()
        assert [t.title for t in core.talks] == ["Second version"]
    finally:
        core.close()


def test_a_config_that_fails_to_load_keeps_the_old_one(tmp_path):
    config = write_config(tmp_path)
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)
    try:
        old = core.config
        config.write_text(config.read_text().replace('name = "Test Seminar"', 'name = "Renamed'))
        core.refresh()
        assert core.config is old
        assert any(line.startswith(f"{config}:2: not valid TOML") for line in lines), lines
        assert f"{config}: not reloaded: the previous configuration stays in force" in lines
        config.write_text(config.read_text().replace('"Renamed', '"Renamed Seminar"'))
        core.refresh()
        assert core.config.series.name == "Renamed Seminar"
        assert core.dispatcher.config is core.config
    finally:
        core.close()


def test_a_connection_failure_pauses_sending_until_its_retry_time_sighup_or_a_config_change(
        tmp_path, smtp_plain, closed_port):
    config = write_config(tmp_path, smtp_plain, smtp={"port": closed_port})
    write_talk(config, "a.yaml", talk("A", "2027-03-10 14:00"))
    write_talk(config, "b.yaml", talk("B", "2027-03-11 14:00"))
    now = utc("2027-03-05 00:00")  # both announcements are due
    minute = timedelta(minutes=1)
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)
    try:
        first = core.run_pass(now)
        assert [(o.message.talk_id, o.state, o.stops_pass) for o in first.outcomes] == [("a", "retry", True)]
        assert core.paused_until == now + minute and "connection refused" in core.paused
        assert core.next_wake(now) == Wake(now + minute, "retry after a connection failure")
        assert core.run_pass(now + minute / 2) is None  # b is not tried against the same wall
        core.refresh()
        assert core.paused

        second = core.run_pass(now + minute)  # a's retry time: one attempt, then a longer wait
        assert "resumed sending (time to retry)" in lines
        assert [(o.message.talk_id, o.state) for o in second.outcomes] == [("a", "retry")]
        assert core.paused_until == now + 3 * minute

        core.refresh(force=True)  # SIGHUP: try at once
        assert "resumed sending (SIGHUP)" in lines
        third = core.run_pass(now + 90 * minute / 60)
        assert [(o.message.talk_id, o.state) for o in third.outcomes] == [("b", "retry")]
        assert sum(line.startswith("paused until ") for line in lines) == 3

        write_config(tmp_path, smtp_plain)  # the right port
        core.refresh()
        assert "resumed sending (the configuration changed)" in lines
        assert sent(core.run_pass(now + 10 * minute)) == {("a", "announcement"), ("b", "announcement")}
    finally:
        core.close()
    assert len(smtp_plain.messages) == 2


def record_arrivals(server: MailServer) -> list[float]:
    """The wall-clock time at which each message reaches the server's DATA handler."""
    arrivals: list[float] = []
    handle = server.handle_DATA

    async def timed(smtp, session, envelope):
        arrivals.append(time.time())
        return await handle(smtp, session, envelope)

    server.handle_DATA = timed  # aiosmtpd looks the hooks up on each new connection
    return arrivals


def soon_reminder(seconds: float) -> tuple[datetime, datetime, str]:
    """A talk start (on a whole minute) and a `before` that makes its reminder due in about `seconds`."""
    now = datetime.now(UTC)
    start = (now + timedelta(minutes=3)).replace(second=0, microsecond=0)
    before = int((start - (now + timedelta(seconds=seconds))).total_seconds())
    return start, start - timedelta(seconds=before), f"{before}s"


def ledger_states(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "announcer.db") as db:
        return dict(db.execute("SELECT key, state FROM messages"))


def message_ids(server: MailServer) -> list[str]:
    return [str(m.message()["Message-ID"]) for m in server.messages]


def test_daemon_sends_a_reminder_within_2_s_of_its_due_time(tmp_path, smtp_starttls, smtp_password_env, start_daemon):
    start, due, before = soon_reminder(5)
    config = write_config(tmp_path, smtp_starttls, messages=[{"kind": "reminder", "before": before}])
    write_talk(config, "soon.yaml", talk("On time", local_minute(start)))
    arrivals = record_arrivals(smtp_starttls)
    daemon = start_daemon(config)
    daemon.wait_for(r"started: config .*, 1 talks, SMTP 127\.0\.0\.1:\d+ \(STARTTLS, user 'mad'\)")
    wait_until(lambda: arrivals, timeout=(due - datetime.now(UTC)).total_seconds() + 5, what="the reminder")
    lateness = arrivals[0] - due.timestamp()
    print(f"reminder lateness: {lateness:.3f} s")
    assert 0 <= lateness < 2
    assert daemon.stop() == 0
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ sent soon reminder <[^>]+@seminar\.example\.org>$", daemon.log, re.M), daemon.log
    assert PASSWORD not in daemon.log
    assert len(smtp_starttls.messages) == 1


def test_daemon_picks_up_a_new_talk_and_keeps_serving_through_broken_files(tmp_path, smtp_plain, start_daemon):
    start, due, before = soon_reminder(7)
    config = write_config(tmp_path, smtp_plain, messages=[{"kind": "announcement", "before": "30m"},
                                                          {"kind": "reminder", "before": before}])
    good = write_talk(config, "a.yaml", talk("Served throughout", local_minute(start)))
    never = write_talk(config, "z.yaml", "title: Broken\nstart: 14:00\n")
    daemon = start_daemon(config)
    daemon.wait_for(rf"{never}:2: \"start: 840\" was read as a number")
    daemon.wait_for(rf"{never}: not loaded; left out")
    daemon.wait_for(r"sent a announcement")

    write_talk(config, "a.yaml", "title: Served throughout\nstart: [\n")  # broken mid-edit
    written = time.monotonic()
    write_talk(config, "b.yaml", talk("Added while running", local_minute(start + timedelta(minutes=20))))
    daemon.wait_for(r"sent b announcement", timeout=8)
    picked_up = time.monotonic() - written
    print(f"new talk sent {picked_up:.2f} s after its file was written")
    assert picked_up < 5
    daemon.wait_for(rf"{good}: not loaded; its last good version \(1 talk\) stays in force")
    daemon.wait_for(r"sent a reminder", timeout=(due - datetime.now(UTC)).total_seconds() + 4)
    assert daemon.stop() == 0
    subjects = [str(m.message()["Subject"]) for m in smtp_plain.messages]
    assert len(subjects) == 3 and all("Broken" not in s for s in subjects)


def test_a_second_daemon_on_the_same_ledger_exits_1_naming_the_first(tmp_path, start_daemon):
    config = write_config(tmp_path)  # Maildir: no server needed
    address = f"@announcer-test-{os.getpid()}-{time.monotonic_ns()}"  # as systemd's $NOTIFY_SOCKET
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind("\0" + address[1:])
    first = start_daemon(config, env={**os.environ, "NOTIFY_SOCKET": address})
    first.wait_for(r"started: ")
    second = subprocess.run([sys.executable, "-m", "announcer", "--config", str(config), "daemon"],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    assert second.stderr.strip() == (f"{tmp_path / 'announcer.db.lock'}: another daemon (pid {first.pid}) "
                                     "is already serving this ledger")
    assert first.stop(signal.SIGINT) == 0
    assert "stopping on SIGINT" in first.log and first.lines[-1].endswith(" stopped")
    notify.settimeout(1)
    with notify:
        assert notify.recv(256) == b"READY=1\nSTATUS=serving 0 talks"
        assert notify.recv(256) == b"STOPPING=1"


def test_sighup_reloads_at_once_and_a_bad_password_pauses_sending(tmp_path, smtp_starttls, start_daemon):
    soon = local_minute(datetime.now(UTC) + timedelta(days=2))
    config = write_config(tmp_path, smtp_starttls, messages=RECENT)
    write_talk(config, "a.yaml", talk("A", soon))
    env = {**os.environ, "ANNOUNCER_SMTP_PASSWORD": "wrong", "GOOD_PASSWORD": PASSWORD}
    daemon = start_daemon(config, "--verbose", env=env)
    daemon.wait_for(r"due a announcement: not sent: .*authentication failed for 'mad'")
    daemon.wait_for(r"paused until .*: .*authentication failed for 'mad'.*: the same settings log in again then")

    mark = len(daemon.lines)
    write_talk(config, "b.yaml", talk("B", soon))
    loaded = daemon.wait_for(r"loaded .*b\.yaml", after=mark)
    daemon.wait_for(r"pass: paused, nothing sent", after=loaded)  # a change of talks does not resume

    daemon.proc.send_signal(signal.SIGHUP)
    hup = daemon.wait_for(r"wake-up: SIGHUP")
    daemon.wait_for(r"reloaded .*announcer\.toml", after=hup)
    daemon.wait_for(r"resumed sending \(SIGHUP\)", after=hup)
    daemon.wait_for(r"login skipped: .*authentication failed", after=hup)  # the same password: not within the hour
    assert smtp_starttls.auth_attempts == 1
    assert "failed a announcement" not in daemon.log and "failed b announcement" not in daemon.log

    write_config(tmp_path, smtp_starttls, smtp={"password_env": "GOOD_PASSWORD"}, messages=RECENT)
    write_talk(config, "c.yaml", talk("C", soon))
    daemon.wait_for(r"resumed sending \(the configuration changed\)")
    daemon.wait_for(r"sent c announcement")
    assert daemon.stop() == 0
    assert sorted(message_ids(smtp_starttls)) == sorted(message_id_for(f"{name}/announcement", DOMAIN)
                                                        for name in "abc")  # every due message stayed due
    assert smtp_starttls.auth_attempts == 2
    assert PASSWORD not in daemon.log and "wrong" not in daemon.log


def test_sigterm_finishes_the_message_in_hand_and_sends_no_other(tmp_path, smtp_plain, start_daemon):
    soon = local_minute(datetime.now(UTC) + timedelta(days=2))
    config = write_config(tmp_path, smtp_plain, messages=RECENT)
    write_talk(config, "a.yaml", talk("A", soon))
    write_talk(config, "b.yaml", talk("B", soon))
    smtp_plain.stall_after_data(1.5)
    daemon = start_daemon(config)
    wait_until(lambda: smtp_plain.messages, what="the first message")  # now in flight: no reply yet
    assert daemon.stop() == 0
    assert list(ledger_states(tmp_path).values()) == ["sent"]
    assert len(smtp_plain.messages) == 1
    assert "stopping on SIGTERM: finishing the message in hand" in daemon.log


def test_restarts_never_send_twice_even_after_kill_9_mid_send(tmp_path, smtp_plain, start_daemon):
    soon = local_minute(datetime.now(UTC) + timedelta(days=2))
    config = write_config(tmp_path, smtp_plain, messages=RECENT)
    write_talk(config, "a.yaml", talk("A", soon))
    first = start_daemon(config)
    first.wait_for(r"sent a announcement")
    assert first.stop() == 0

    write_talk(config, "b.yaml", talk("B", soon))
    smtp_plain.stall_after_data(5)
    second = start_daemon(config, lease_seconds=1)
    wait_until(lambda: len(smtp_plain.messages) == 2, what="b's announcement in flight")
    second.proc.kill()
    second.proc.wait(5)
    assert ledger_states(tmp_path) == {"a/announcement": "sent", "b/announcement": "claimed"}

    time.sleep(1.5)  # the claim's lease runs out: nothing renews it
    third = start_daemon(config, "--verbose")
    third.wait_for(r"uncertain b announcement: the process sending it stopped before recording the outcome")
    third.wait_for(r"pass: 0 sent")
    assert third.stop() == 0
    assert ledger_states(tmp_path) == {"a/announcement": "sent", "b/announcement": "uncertain"}
    assert sorted(message_ids(smtp_plain)) == sorted(message_id_for(f"{t}/announcement", DOMAIN) for t in "ab")


# Bad input in the daemon (SPEC 5 and 6): a bad file is logged and left out; every other talk is served


def test_a_bad_file_added_beside_a_due_talk_never_stops_it_being_sent(tmp_path):
    config = write_config(tmp_path)  # Maildir
    never = write_talk(config, "z.yaml", "title: Broken from the start\nstart: 2027-02-30\n")
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)  # starts with such a file present
    try:
        assert core.talks == []
        assert any(line.startswith(f"{never}:2: '2027-02-30' is not a date or time that exists") for line in lines)
        assert f"{never}: not loaded; left out until the errors are fixed" in lines
        # Added at the same moment, the bad file read after the due one (as a.yaml, b.yaml are).
        write_talk(config, "a.yaml", talk("Due now", "2027-03-10 14:00"))
        bad = write_talk(config, "b.yaml", 'title: "Sur\\ud800"\nstart: 2027-03-11 14:00\n')
        assert core.refresh() is True
        assert [t.id for t in core.talks] == ["a"]
        now = utc("2027-03-05 00:00")  # a's announcement is due
        assert sent(core.run_pass(now)) == {("a", "announcement")}
        assert any(line.startswith(f"{bad}:1: a lone surrogate U+D800") for line in lines)
        write_talk(config, "b.yaml", talk("Fixed", "2027-03-11 14:00"))
        core.refresh()
        assert sent(core.run_pass(now)) == {("b", "announcement")}
    finally:
        core.close()
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 2


def test_a_file_whose_load_breaks_off_is_tried_again_and_never_blocks_the_others(tmp_path, monkeypatch):
    config = write_config(tmp_path)
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)
    try:
        # A bug met by one file's content (none is known: every bad input is a problem at load).
        original = watch.load_talk_file
        reads: list[Path] = []

        def load(path, series):
            reads.append(path)
            if path.name == "b.yaml":
                raise ValueError("a bug this file's content meets")
            return original(path, series)

        monkeypatch.setattr(watch, "load_talk_file", load)
        a = write_talk(config, "a.yaml", talk("Due now", "2027-03-10 14:00"))
        b = write_talk(config, "b.yaml", talk("Meets the bug", "2027-03-11 14:00"))
        assert core.refresh() is True
        assert [t.id for t in core.talks] == ["a"]
        assert f"{b}: not loaded (ValueError: a bug this file's content meets); left out" in lines
        assert sent(core.run_pass(utc("2027-03-05 00:00"))) == {("a", "announcement")}
        reads.clear()
        core.refresh()
        assert reads == [b]  # its stamp was not saved: read again, while a.yaml is not
        monkeypatch.setattr(watch, "load_talk_file", original)
        core.refresh()
        assert [t.id for t in core.talks] == ["a", "b"] and a in core.talk_files.stamps
    finally:
        core.close()


def test_a_message_that_cannot_be_built_is_invalid_and_the_pass_goes_on(tmp_path, monkeypatch):
    from announcer.compose import message

    config = write_config(tmp_path)
    write_talk(config, "a.yaml", talk("Meets the bug", "2027-03-10 14:00"))
    write_talk(config, "b.yaml", talk("Fine", "2027-03-11 14:00"))
    original = message.build_message

    def build(config, talk, *args, **kwargs):
        if talk.id == "a":  # what the email package raises for a header value it refuses
            raise ValueError("Header values may not contain linefeed or carriage return characters")
        return original(config, talk, *args, **kwargs)

    monkeypatch.setattr(message, "build_message", build)
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)
    try:
        result = core.run_pass(utc("2027-03-05 00:00"))
        assert [(o.message.talk_id, o.state) for o in result.outcomes] == [("a", "invalid"), ("b", "sent")]
        assert ("invalid a announcement: cannot build the message (ValueError: Header values may not contain "
                "linefeed or carriage return characters)") in lines
    finally:
        core.close()


def test_daemon_starts_beside_a_bad_file_and_sends_a_due_talk_added_with_another(tmp_path, smtp_plain, start_daemon):
    start, due, before = soon_reminder(8)
    # Announcements due within the hour before the ledger is made: a new ledger sends them (not held).
    config = write_config(tmp_path, smtp_plain, messages=[{"kind": "announcement", "before": "30m"},
                                                          {"kind": "reminder", "before": before}])
    write_talk(config, "a.yaml", talk("Served throughout", local_minute(start)))
    never = write_talk(config, "z.yaml", "title: Broken\nstart: 2027-02-30 14:00:00\n")
    daemon = start_daemon(config)
    daemon.wait_for(r"started: config .*, 1 talks")
    daemon.wait_for(rf"{never}:2: '2027-02-30 14:00:00' is not a date or time that exists")
    daemon.wait_for(r"sent a announcement")

    write_talk(config, "b.yaml", talk("Added beside a bad file", local_minute(start + timedelta(minutes=10))))
    bad = write_talk(config, "c.yaml", "title: Bad\nstart: 2027-03-10 24:00:00\nnotes: 2027-02-29\n")
    daemon.wait_for(r"sent b announcement", timeout=8)
    daemon.wait_for(rf"{bad}:2: '2027-03-10 24:00:00' is not a date or time that exists")
    daemon.wait_for(r"sent a reminder", timeout=(due - datetime.now(UTC)).total_seconds() + 4)
    assert daemon.stop() == 0
    assert "the pass failed" not in daemon.log and "Traceback" not in daemon.log
    subjects = [str(m.message()["Subject"]) for m in smtp_plain.messages]
    assert len(subjects) == 3 and all("Bad" not in s and "Broken" not in s for s in subjects)
