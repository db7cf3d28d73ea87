"""The PostgreSQL ledger (SPEC 8.4) against a real server that the tests start on 127.0.0.1
(tests/postgres_server.py), and daemons sharing it as real processes."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from announcer.deliver.ledger import SqliteLedger, open_ledger
from announcer.deliver.ledger import postgres as pg_ledger
from announcer.errors import AnnouncerError, LedgerUnavailable
from announcer.plan import Mode, PlannedMessage, message_id_for
from announcer.sources.config import load_config

from conftest import announcer_command, write_config
from daemon_process import RECENT, local_minute, wait_until
from postgres_server import PASSWORD
from series_files import talk, write_talk

DOMAIN = "seminar.example.org"  # write_config's
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)


def pg_config(tmp_path: Path, postgres, server=None, **state) -> Path:
    """A series whose ledger is the test server's database (Maildir delivery unless `server`), with
    announcements due 2 days 30 minutes before their talk (recent enough for a new ledger to send)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return write_config(tmp_path, server, messages=RECENT,
                        state={"path": None, "url": postgres.url, "series": tmp_path.name, **state})


def message(name: str = "a", kind: str = "announcement") -> PlannedMessage:
    due = NOW - timedelta(minutes=5)
    return PlannedMessage(name, kind, f"{name}/{kind}", due, due + timedelta(days=7), "due", 0,
                          message_id_for(f"{name}/{kind}", DOMAIN), None)


def cli(config: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*announcer_command(), "--config", str(config), *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=env)


def table(postgres, sql: str) -> list[list[str]]:
    rows = postgres.psql(sql, database="announcer").stdout.splitlines()
    return [row.split("|") for row in rows]


# The ledger itself


def test_of_two_ledgers_claiming_one_message_at_once_exactly_one_gets_it(tmp_path, postgres):
    config = load_config(pg_config(tmp_path, postgres))
    for round_ in range(20):
        ledgers = [open_ledger(config, write=True) for _ in range(4)]
        barrier, won = threading.Barrier(len(ledgers)), []

        def claim(ledger):
            barrier.wait()
            if ledger.claim(message(f"t{round_}"), NOW):
                won.append(ledger.owner)

        threads = [threading.Thread(target=claim, args=(ledger,)) for ledger in ledgers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1
        for ledger in ledgers:
            ledger.close()


def test_records_history_and_announced_facts_round_trip_and_stay_within_their_series(tmp_path, postgres):
    maths = load_config(pg_config(tmp_path / "maths", postgres))
    physics = load_config(pg_config(tmp_path / "physics", postgres))
    with open_ledger(maths, write=True) as ledger, open_ledger(physics, write=True) as other:
        assert ledger.claim(message(), NOW)
        assert other.claim(message(), NOW)    # the same key in another series is another message
        assert not ledger.claim(message(), NOW)
        ledger.record(message(), "sent", NOW, message_id="<m@x>", facts={"start": "2027-03-08T14:00"})
        record = ledger.records()["a/announcement"]
        assert (record.state, record.message_id, record.updated) == ("sent", "<m@x>", NOW)
        assert ledger.announced()["a"].facts == {"start": "2027-03-08T14:00"}
        assert [(e.talk_id, e.kind, e.state) for e in ledger.history()] == [("a", "announcement", "sent")]
        assert other.records()["a/announcement"].state == "claimed"
        assert other.history() == [] and other.announced() == {}
        assert not ledger.claim(message(), NOW, Mode.MANUAL)   # sent: only --force takes it again
        assert ledger.claim(message(), NOW, Mode.FORCE)
        ledger.release(message())
        assert ledger.records()["a/announcement"].state == "sent" and ledger.attempts("a/announcement") == 1


def test_a_claim_not_renewed_becomes_uncertain_once_and_is_never_claimed_again_by_a_pass(tmp_path, postgres,
                                                                                         monkeypatch):
    config = load_config(pg_config(tmp_path, postgres))
    monkeypatch.setattr(pg_ledger, "LEASE", timedelta(seconds=1))
    dead = open_ledger(config, write=True)
    assert dead.claim(message(), NOW)
    dead._keeper.stop()   # its process died: nothing renews the lease
    dead._keeper = None
    with open_ledger(config, write=True) as first, open_ledger(config, write=True) as second:
        assert first.records()["a/announcement"].state == "claimed"
        time.sleep(1.2)
        assert first.records()["a/announcement"].state == "uncertain"   # plan shows it at once
        recovered = []
        threads = [threading.Thread(target=lambda l=ledger: recovered.extend(l.recover_abandoned(NOW)))
                   for ledger in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert recovered == [("a/announcement", "a", "announcement")]   # recorded by one of the two
        assert [e.state for e in first.history()] == ["uncertain"]
        assert not second.claim(message(), NOW, Mode.DUE) and not second.claim(message(), NOW, Mode.MANUAL)
    dead.close()


def test_a_live_owner_renews_its_lease(tmp_path, postgres, monkeypatch):
    config = load_config(pg_config(tmp_path, postgres))
    monkeypatch.setattr(pg_ledger, "LEASE", timedelta(seconds=1))
    with open_ledger(config, write=True) as owner, open_ledger(config, write=True) as other:
        assert owner.claim(message(), NOW)
        time.sleep(2.5)   # ten renewals at a quarter of the lease
        assert other.records()["a/announcement"].state == "claimed"
        assert other.recover_abandoned(NOW) == []


def test_the_tables_are_versioned_and_a_newer_schema_is_refused(tmp_path, postgres):
    config = load_config(pg_config(tmp_path, postgres))
    opened = []
    threads = [threading.Thread(target=lambda: opened.append(open_ledger(config, write=True))) for _ in range(4)]
    for thread in threads:   # four daemons starting at once on a new database: one creates the tables
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 4
    for ledger in opened:
        ledger.close()
    assert table(postgres, "SELECT version FROM announcer.migrations") == [["1"]]
    postgres.psql("INSERT INTO announcer.migrations (version) VALUES (2)", database="announcer")
    with pytest.raises(AnnouncerError, match=r"written by a newer announcer \(schema version 2, this one knows 1\)"):
        open_ledger(config, write=True)


def test_the_sqlite_ledger_records_its_schema_version_and_upgrades_one_from_before_versions(tmp_path):
    import sqlite3

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:   # a ledger as written before leases and versions
        db.executescript("CREATE TABLE messages (key TEXT PRIMARY KEY, talk TEXT NOT NULL, kind TEXT NOT NULL, "
                         "due TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
                         "next_try TEXT, message_id TEXT, sequence INTEGER, facts TEXT, last_error TEXT, "
                         "owner TEXT, updated TEXT NOT NULL);"
                         "INSERT INTO messages (key, talk, kind, due, state, updated) VALUES "
                         "('a/announcement', 'a', 'announcement', '2027-03-01T11:55:00.000000Z', 'sent', "
                         "'2027-03-01T11:55:00.000000Z')")
    with SqliteLedger(old) as ledger:
        assert ledger.records()["a/announcement"].state == "sent"
        assert ledger.claim(message("b"), NOW)   # the lease column was added
    with sqlite3.connect(old) as db:
        assert db.execute("SELECT version FROM migrations").fetchall() == [(1,)]
        db.execute("INSERT INTO migrations (version, applied) VALUES (2, 'later')")
    with pytest.raises(AnnouncerError, match=r"old.db: the ledger was written by a newer announcer"):
        SqliteLedger(old)


@pytest.fixture(params=["sqlite", "postgres"])
def two_runs(request, tmp_path):
    """Two ledgers on one series' state, as two processes hold them: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        config = load_config(write_config(tmp_path))
    else:
        config = load_config(pg_config(tmp_path, request.getfixturevalue("postgres")))
    first, second = open_ledger(config, write=True), open_ledger(config, write=True)
    yield first, second
    first.close()
    second.close()


def test_a_missed_message_is_never_recorded_over_what_another_process_recorded(two_runs):
    late, sender = two_runs
    assert sender.claim(message(), NOW)
    sender.record(message(), "sent", NOW, message_id="<m@x>")
    # The late process read the ledger before the send and found the talk started since.
    assert not late.record(message(), "missed", NOW, error="its talk started", only_from=("retry",))
    assert late.records()["a/announcement"].state == "sent"
    assert [e.state for e in late.history()] == ["sent"]
    assert late.record(message("b"), "missed", NOW, error="its talk started", only_from=("retry",))
    assert late.records()["b/announcement"].state == "missed"


def test_only_claims_in_hand_are_renewed(two_runs, monkeypatch):
    from announcer.deliver.ledger import sqlite as sqlite_ledger

    monkeypatch.setattr(sqlite_ledger, "LEASE", timedelta(seconds=1))
    monkeypatch.setattr(pg_ledger, "LEASE", timedelta(seconds=1))
    owner, other = two_runs
    assert owner.claim(message("a"), NOW) and owner.claim(message("b"), NOW)
    owner.in_hand.discard("b/announcement")   # as after a record that failed once the message was sent
    time.sleep(2.5)
    states = {key: record.state for key, record in other.records().items()}
    assert states == {"a/announcement": "claimed", "b/announcement": "uncertain"}


def test_a_role_that_may_not_create_tables_uses_tables_already_made(tmp_path, postgres, monkeypatch):
    config = load_config(pg_config(tmp_path, postgres))
    open_ledger(config, write=True).close()   # the owner made them
    postgres.psql("CREATE ROLE clerk LOGIN PASSWORD 'clerk-pw'; REVOKE CREATE ON DATABASE announcer FROM PUBLIC; "
                  "GRANT USAGE ON SCHEMA announcer TO clerk; "
                  "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA announcer TO clerk", database="announcer")
    try:
        clerk = load_config(pg_config(tmp_path / "clerk", postgres, url=postgres.url.replace("announcer@", "clerk@"),
                                      series=tmp_path.name, password_env="CLERK_PASSWORD"))
        monkeypatch.setenv("CLERK_PASSWORD", "clerk-pw")
        with open_ledger(clerk, write=True) as ledger:
            assert ledger.claim(message(), NOW)
            ledger.record(message(), "sent", NOW, message_id="<m@x>")
        assert table(postgres, "SELECT state FROM announcer.messages") == [["sent"]]
        postgres.psql("INSERT INTO announcer.migrations (version) VALUES (2)", database="announcer")
        with pytest.raises(AnnouncerError, match="written by a newer announcer"):   # not "permission denied"
            open_ledger(clerk, write=True)
    finally:
        postgres.psql("DROP OWNED BY clerk; DROP ROLE clerk", database="announcer")


# Bad settings and an unreachable database: one line, exit 1, no password


@pytest.mark.parametrize("url, expected", [
    ("postgresql://announcer:secret-pw@127.0.0.1/announcer", "never write the password in the URL"),
    ("postgresql://announcer@127.0.0.1/announcer?password=secret-pw", "never write the password in the URL"),
    ("mysql://announcer@127.0.0.1/announcer", "must be postgresql://USER@HOST:PORT/DATABASE"),
    ("postgresql://announcer@127.0.0.1:99999/announcer", "is not a valid URL"),
    ("postgresql://announcer@127.0.0.1/announcer?pass%77ord=secret-pw", "never write the password in the URL"),
])
def test_a_bad_url_is_one_line_with_its_place_and_never_shows_a_password(tmp_path, url, expected):
    config = write_config(tmp_path, state={"path": None, "url": url})
    done = cli(config, "check")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"{config}:")
    assert f'"url": {expected}' in done.stderr
    assert "secret-pw" not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_a_database_out_of_reach_or_a_wrong_password_is_one_line_and_exit_1(tmp_path, postgres):
    config = pg_config(tmp_path, postgres)
    write_talk(config, "a.yaml", talk("A", local_minute(datetime.now(timezone.utc) + timedelta(days=2))))
    wrong = cli(config, "send", "--due", env={"PGPASSWORD": "wrong-password", "PATH": "/usr/bin:/bin"})
    assert wrong.returncode == 1, wrong.stderr
    assert wrong.stderr.count("\n") == 1 and "password authentication failed" in wrong.stderr
    assert postgres.url in wrong.stderr and "wrong-password" not in wrong.stderr
    closed = pg_config(tmp_path / "closed", postgres, url=postgres.url.replace(str(postgres.port), "1"))
    down = cli(closed, "plan")
    assert down.returncode == 1 and down.stderr.count("\n") == 1, down.stderr
    assert "cannot open the ledger" in down.stderr and "Connection refused" in down.stderr
    none = cli(config, "plan", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert none.returncode == 1 and none.stderr.count("\n") == 1
    assert none.stderr.rstrip().endswith("no password supplied: set PGPASSWORD, write ~/.pgpass, or name a "
                                         "variable with [state] password_env")
    missing = pg_config(tmp_path / "env", postgres, password_env="ANNOUNCER_PG_PASSWORD")
    unset = cli(missing, "plan")
    assert unset.returncode == 1 and f"{missing}: password_env names $ANNOUNCER_PG_PASSWORD, which is not set" in unset.stderr
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox" / "new").iterdir())


def test_send_plan_and_log_work_on_a_postgresql_ledger_and_password_env_is_read(tmp_path, postgres, monkeypatch):
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("ANNOUNCER_PG_PASSWORD", PASSWORD)
    config = pg_config(tmp_path, postgres, password_env="ANNOUNCER_PG_PASSWORD", series="maths-and-data")
    soon = local_minute(datetime.now(timezone.utc) + timedelta(days=2))
    write_talk(config, "a.yaml", talk("A", soon))
    write_talk(config, "b.yaml", talk("B", soon))
    first = cli(config, "send", "--due")
    assert first.returncode == 0, first.stderr
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 2
    again = cli(config, "send", "--due")
    assert again.returncode == 0 and len(list((tmp_path / "outbox" / "new").iterdir())) == 2
    plan = cli(config, "plan")   # what is still to come: the reminders
    assert plan.returncode == 0 and plan.stdout.count("reminder  pending") == 2, plan.stdout
    assert "announcement" not in plan.stdout
    log = cli(config, "log")
    assert log.stdout.count("announcement  sent") == 2, log.stdout
    assert table(postgres, "SELECT DISTINCT series FROM announcer.messages") == [["maths-and-data"]]
    assert PASSWORD not in first.stdout + first.stderr + plan.stdout + log.stdout


# Daemons as processes


def two_daemon_series(tmp_path: Path, postgres, server, talks: int) -> Path:
    config = pg_config(tmp_path, postgres, server)
    soon = local_minute(datetime.now(timezone.utc) + timedelta(days=2))   # announced 30 minutes ago
    for number in range(talks):
        write_talk(config, f"t{number:03}.yaml", talk(f"Talk {number}", soon))
    return config


def test_two_daemons_on_one_postgresql_ledger_send_each_message_exactly_once(tmp_path, postgres, smtp_plain,
                                                                            start_daemon):
    config = two_daemon_series(tmp_path, postgres, smtp_plain, talks=60)
    smtp_plain.stall_after_data(0.1, count=60)   # 6 s for one daemon alone: the second joins in
    daemons = [start_daemon(config), start_daemon(config)]   # no lock: both serve the series
    wait_until(lambda: len(smtp_plain.messages) >= 60, timeout=60, what="60 announcements")
    time.sleep(1)
    received = [str(m.message()["Message-ID"]) for m in smtp_plain.messages]
    assert sorted(received) == sorted(message_id_for(f"t{n:03}/announcement", DOMAIN) for n in range(60))
    for daemon in daemons:
        assert daemon.stop() == 0
        assert f"ledger {postgres.url} (series {tmp_path.name})" in daemon.log
        assert " sent t0" in daemon.log   # each sent some of them
    assert table(postgres, "SELECT state, count(*) FROM announcer.messages GROUP BY state") == [["sent", "60"]]
    assert table(postgres, "SELECT count(*) FROM announcer.events") == [["60"]]


def test_a_daemon_killed_mid_send_leaves_its_claim_to_become_uncertain_and_the_other_never_resends_it(
        tmp_path, postgres, smtp_plain, start_daemon):
    config = two_daemon_series(tmp_path, postgres, smtp_plain, talks=1)
    smtp_plain.stall_after_data(30)
    victim = start_daemon(config, lease_seconds=1)
    wait_until(lambda: len(smtp_plain.messages) == 1, timeout=20, what="the announcement in flight")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(5)
    survivor = start_daemon(config, "--verbose", lease_seconds=1)
    survivor.wait_for(r"pass: ", timeout=20)
    time.sleep(2)   # the dead daemon's lease runs out
    plan = cli(config, "plan")
    assert "uncertain" in plan.stdout, plan.stdout
    survivor.proc.send_signal(signal.SIGHUP)   # a pass now: it records the dead daemon's claim, sends nothing
    survivor.wait_for(r"uncertain t000 announcement: the process sending it stopped before recording the outcome")
    survivor.wait_for(r"pass: 0 sent", after=len(survivor.lines) - 1)
    assert survivor.stop() == 0
    log = cli(config, "log")
    assert log.stdout.count("uncertain  the process sending it stopped before recording the outcome") == 1
    assert len(smtp_plain.messages) == 1   # never sent again, by the survivor or anyone
    assert table(postgres, "SELECT state FROM announcer.messages") == [["uncertain"]]


def test_a_folder_daemon_keeps_every_series_in_one_database(tmp_path, postgres, start_daemon):
    soon = local_minute(datetime.now(timezone.utc) + timedelta(days=2))
    for name in ("colloquium", "maths-data"):
        config = pg_config(tmp_path / name, postgres)
        write_talk(config, "a.yaml", talk(f"A talk of {name}", soon))
    daemon = start_daemon(tmp_path)
    outboxes = [tmp_path / name / "outbox" / "new" for name in ("colloquium", "maths-data")]
    wait_until(lambda: all(outbox.is_dir() and len(list(outbox.iterdir())) == 1 for outbox in outboxes),
               timeout=30, what="each series' announcement")
    assert daemon.stop() == 0
    assert table(postgres, "SELECT series, key, state FROM announcer.messages ORDER BY series") == [
        ["colloquium", "a/announcement", "sent"], ["maths-data", "a/announcement", "sent"]]
    assert not list(tmp_path.glob("*/announcer.db*"))   # no SQLite ledger, no lock file beside the configs


def test_reading_a_series_before_its_first_send_does_not_date_its_ledger(tmp_path, postgres):
    config = pg_config(tmp_path, postgres)
    write_talk(config, "a.yaml", talk("A", local_minute(datetime.now(timezone.utc) + timedelta(days=2))))
    assert cli(config, "plan").returncode == 0 and cli(config, "preview", "--out", str(tmp_path / "p")).returncode == 0
    assert table(postgres, "SELECT name FROM announcer.meta") == []   # as no SQLite file is made by them
    assert cli(config, "send", "--due").returncode == 0
    assert table(postgres, "SELECT series, name FROM announcer.meta ORDER BY name") == [
        [tmp_path.name, "created"], [tmp_path.name, "domain"]]


def test_a_daemon_that_loses_the_database_after_a_send_leaves_it_uncertain_and_connects_again(
        tmp_path, postgres, smtp_plain, start_daemon):
    config = two_daemon_series(tmp_path, postgres, smtp_plain, talks=1)
    smtp_plain.stall_after_data(4)
    daemon = start_daemon(config, "--verbose", lease_seconds=1)
    wait_until(lambda: len(smtp_plain.messages) == 1, timeout=20, what="the announcement in flight")
    postgres.pause()   # the database restarts while the server holds its reply
    postgres.resume()
    daemon.wait_for(r"error: the pass failed: .*the ledger's database failed", timeout=20)
    time.sleep(1.5)   # nothing renews the claim whose outcome could not be recorded: its lease runs out
    assert table(postgres, "SELECT state, owner IS NOT NULL FROM announcer.messages") == [["claimed", "t"]]
    assert "uncertain" in cli(config, "plan").stdout
    daemon.proc.send_signal(signal.SIGHUP)   # the next pass connects again
    daemon.wait_for(r"uncertain t000 announcement: the process sending it stopped before recording the outcome")
    assert daemon.stop() == 0
    assert len(smtp_plain.messages) == 1
    assert table(postgres, "SELECT state FROM announcer.messages") == [["uncertain"]]


def test_a_folder_daemon_serves_a_series_whose_database_was_down_once_it_is_back(tmp_path, postgres, start_daemon):
    soon = local_minute(datetime.now(timezone.utc) + timedelta(days=2))
    (tmp_path / "local").mkdir()
    local = write_config(tmp_path / "local", messages=RECENT)   # a SQLite ledger, served all along
    shared = pg_config(tmp_path / "shared", postgres)
    for config in (local, shared):
        write_talk(config, "a.yaml", talk("A", soon))
    postgres.pause()
    try:
        daemon = start_daemon(tmp_path)
        daemon.wait_for(r"shared: postgresql://\S+: cannot open the ledger: .*: skipped")   # tried again later
        daemon.wait_for(r"local: sent a announcement")
    finally:
        postgres.resume()
    daemon.proc.send_signal(signal.SIGHUP)   # as the heartbeat does each minute
    daemon.wait_for(r"shared: sent a announcement", timeout=20)
    assert daemon.stop() == 0
    assert table(postgres, "SELECT series, state FROM announcer.messages") == [["shared", "sent"]]


def test_a_postgresql_ledger_needs_a_series_key_and_refuses_another_series_key(tmp_path, postgres):
    for name in ("keyless", "stats"):
        (tmp_path / name).mkdir()
    keyless = write_config(tmp_path / "keyless", state={"path": None, "url": postgres.url})
    done = cli(keyless, "check")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert '"url" needs "series" beside it' in done.stderr and done.stderr.startswith(f"{keyless}:")
    ours = pg_config(tmp_path / "maths", postgres, series="seminar")
    write_talk(ours, "a.yaml", talk("A", local_minute(datetime.now(timezone.utc) + timedelta(days=2))))
    assert cli(ours, "send", "--due").returncode == 0
    theirs = write_config(tmp_path / "stats", series={"domain": "stats.example.org"}, messages=RECENT,
                          state={"path": None, "url": postgres.url, "series": "seminar"})
    for command in (["log"], ["plan"], ["send", "--due"]):
        refused = cli(theirs, *command)
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
        assert 'series = "seminar" is the key of another series' in refused.stderr
        assert "(domain seminar.example.org, this one stats.example.org)" in refused.stderr
        assert refused.stdout == ""


def test_a_folder_series_whose_database_goes_away_says_so_once_and_again_when_it_is_back(tmp_path, postgres):
    from announcer.run.folder import FolderCore

    config = pg_config(tmp_path / "shared", postgres)
    write_talk(config, "a.yaml", talk("A", local_minute(datetime.now(timezone.utc) + timedelta(days=2))))
    lines: list[str] = []
    core = FolderCore(tmp_path, lines.append)
    now = datetime.now(timezone.utc)
    try:
        core.run({"shared"}, now)
        assert any(line.startswith("shared: sent a announcement") for line in lines), lines
        postgres.pause()
        try:
            for minute in range(3):   # the timer wakes for the series each minute, as for a retry
                core.run({"shared"}, now + timedelta(minutes=minute))
        finally:
            postgres.resume()
        failed = [line for line in lines if "the pass failed" in line]
        assert len(failed) == 1 and failed[0].endswith(": tried again each minute"), lines
        assert core.slots["shared"].wake.at == now + timedelta(minutes=3)
        core.run({"shared"}, now + timedelta(minutes=3))
        assert lines[-1] == "shared: passes work again"
    finally:
        core.close()


def test_a_database_host_that_never_answers_costs_one_timeout_not_one_per_series(tmp_path, monkeypatch):
    import socket

    monkeypatch.setattr(pg_ledger, "CONNECT_SECONDS", 1)
    monkeypatch.setattr(pg_ledger, "TIMED_OUT", {})
    for name in ("one", "two", "three"):
        (tmp_path / name).mkdir()
    with socket.socket() as silent:   # takes the connection, never says a word: as a host that drops packets
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"postgresql://announcer@127.0.0.1:{silent.getsockname()[1]}/announcer"
        configs = [load_config(write_config((tmp_path / name), state={"path": None, "url": url, "series": name}))
                   for name in ("one", "two", "three")]
        waits = []
        for config in configs:
            began = time.monotonic()
            with pytest.raises(LedgerUnavailable, match="cannot open the ledger") as error:
                open_ledger(config, write=True)
            waits.append(time.monotonic() - began)
        assert waits[0] >= 0.9 and max(waits[1:]) < 0.5, waits
        assert str(error.value).endswith("(not tried again yet)")


def test_a_folder_daemon_warns_of_a_series_whose_ledger_is_a_file_beside_series_in_postgresql(tmp_path, postgres):
    from announcer.run.folder import FolderCore

    (tmp_path / "added").mkdir()
    write_config(tmp_path / "added")   # as `announcer init` writes it: [state] path
    pg_config(tmp_path / "shared", postgres)
    lines: list[str] = []
    core = FolderCore(tmp_path, lines.append)
    try:
        core.run({"added", "shared"}, datetime.now(timezone.utc))   # "added" starts first
        core.run({"added", "shared"}, datetime.now(timezone.utc))
    finally:
        core.close()
    warnings = [line for line in lines if "warning" in line]
    assert warnings == [f"added: warning: its ledger is the file {tmp_path / 'added' / 'announcer.db'}, while shared "
                        "keeps its in PostgreSQL: each host serving this folder would send this series' messages "
                        "(give it [state] url and series)"]
