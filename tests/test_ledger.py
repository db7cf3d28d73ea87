import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import announcer.deliver.ledger.sqlite as ledger_module
from announcer.deliver.ledger import SqliteLedger, retry_delay
from announcer.plan import PlannedMessage

NOW = datetime(2027, 2, 14, 14, 0, tzinfo=timezone.utc)


def message(key="talk/announcement", kind="announcement", sequence=0):
    return PlannedMessage(talk_id="talk", kind=kind, key=key, due=NOW, closes=NOW + timedelta(days=7),
                          state="due", sequence=sequence, message_id="<announcement.talk@x>", thread_id=None)


def test_claim_once_then_refused(tmp_path):
    with SqliteLedger(tmp_path / "l.db") as ledger:
        assert ledger.claim(message(), NOW)
        assert not ledger.claim(message(), NOW)  # in flight
        ledger.record(message(), "sent", NOW, message_id="<m@x>", facts={"start": "s"})
        assert not ledger.claim(message(), NOW)
        assert not ledger.claim(message(), NOW, "manual")
        assert ledger.claim(message(), NOW, "force")
        assert ledger.records()["talk/announcement"].state == "claimed"


def test_retry_waits_for_its_time(tmp_path):
    with SqliteLedger(tmp_path / "l.db") as ledger:
        assert ledger.claim(message(), NOW)
        ledger.record(message(), "retry", NOW, error="451", next_try=NOW + timedelta(minutes=1))
        assert not ledger.claim(message(), NOW + timedelta(seconds=59))
        assert ledger.claim(message(), NOW + timedelta(minutes=1))
        assert ledger.attempts("talk/announcement") == 2


def test_failed_needs_a_person(tmp_path):
    with SqliteLedger(tmp_path / "l.db") as ledger:
        ledger.claim(message(), NOW)
        ledger.record(message(), "failed", NOW, error="550")
        assert not ledger.claim(message(), NOW + timedelta(hours=1))
        assert ledger.claim(message(), NOW + timedelta(hours=1), "manual")


def test_backoff_doubles_up_to_an_hour():
    assert [retry_delay(n).total_seconds() / 60 for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_announced_facts_follow_the_highest_sequence(tmp_path):
    with SqliteLedger(tmp_path / "l.db") as ledger:
        ledger.claim(message(), NOW)
        ledger.record(message(), "sent", NOW, message_id="<a@x>", facts={"location": "Eck 206"})
        update = message("talk/update/1", "update", sequence=1)
        ledger.claim(update, NOW)
        ledger.record(update, "sent", NOW + timedelta(minutes=5), message_id="<u@x>", facts={"location": "Eck 203"})
        reminder = message("talk/reminder/1h/x", "reminder", sequence=1)
        ledger.claim(reminder, NOW)
        ledger.record(reminder, "sent", NOW + timedelta(minutes=9), message_id="<r@x>", facts=None)
        announced = ledger.announced()["talk"]
        assert announced.facts == {"location": "Eck 203"} and announced.sequence == 1
        assert [(e.kind, e.state) for e in ledger.history("talk")] == [
            ("announcement", "sent"), ("update", "sent"), ("reminder", "sent")]


def _claim_in_process(path, results):
    with SqliteLedger(path) as ledger:
        results.put(ledger.claim(message(), NOW))


def test_concurrent_claims_have_one_winner(tmp_path):
    path = tmp_path / "l.db"
    SqliteLedger(path).close()
    results = multiprocessing.get_context("spawn").Queue()
    processes = [multiprocessing.get_context("spawn").Process(target=_claim_in_process, args=(path, results))
                 for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    assert sorted(results.get(timeout=5) for _ in processes) == [False, False, False, True]


def test_claim_of_a_dead_process_becomes_uncertain_when_its_lease_runs_out(tmp_path, monkeypatch):
    path = tmp_path / "l.db"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_ledger import message, NOW;"
            "from announcer.deliver.ledger import SqliteLedger; assert SqliteLedger(sys.argv[2]).claim(message(), NOW)")
    subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(path)], check=True, timeout=60)
    with SqliteLedger(path) as ledger:
        assert ledger.records()["talk/announcement"].state == "claimed"
        assert ledger.recover_abandoned(NOW) == []  # its lease has not run out yet
        later = ledger_module.clock() + ledger_module.LEASE + timedelta(seconds=1)
        monkeypatch.setattr(ledger_module, "clock", lambda: later)
        assert ledger.records()["talk/announcement"].state == "uncertain"  # what plan shows before a pass
        assert ledger.recover_abandoned(NOW) == [("talk/announcement", "talk", "announcement")]
        assert ledger.records()["talk/announcement"].state == "uncertain"
        assert ledger.history()[-1].detail == "the process sending it stopped before recording the outcome"
        assert not ledger.claim(message(), NOW + timedelta(hours=1))


def test_own_claims_are_not_recovered(tmp_path):
    with SqliteLedger(tmp_path / "l.db") as ledger:
        ledger.claim(message(), NOW)
        assert ledger.recover_abandoned(NOW) == []


def test_claims_wait_for_the_disk_records_do_not(tmp_path):
    with SqliteLedger(tmp_path / "l.db") as ledger:
        assert ledger.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        statements = []
        ledger.db.set_trace_callback(statements.append)
        assert ledger.claim(message(), NOW)
        ledger.record(message(), "sent", NOW, message_id="<m@x>")
        ledger.db.set_trace_callback(None)
        assert ledger.db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL again, for the next claim
    syncs = [s for s in statements if s.startswith(("PRAGMA synchronous", "BEGIN", "COMMIT", "INSERT INTO messages"))]
    assert [s.split(" (")[0] for s in syncs] == [
        "INSERT INTO messages", "PRAGMA synchronous=NORMAL", "BEGIN IMMEDIATE", "INSERT INTO messages",
        "COMMIT", "PRAGMA synchronous=FULL"]


def test_a_ledger_opened_while_another_process_writes_the_new_file_waits_for_it(tmp_path):
    # Two cron runs (or cron and the daemon) may open a ledger that does not exist yet at the same
    # moment. Switching the file to WAL wants it whole, and while another connection is about to
    # write it SQLite gives up at once, its busy timeout unused: "database is locked", before.
    path = tmp_path / "announcer.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE other (x)")
    other.execute("BEGIN IMMEDIATE")  # about to write, as the other opener setting up its schema
    release = threading.Timer(0.3, other.commit)
    release.start()
    try:
        with SqliteLedger(path) as ledger:
            assert ledger.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert ledger.records() == {}
    finally:
        release.join()
        other.close()


def test_a_released_claim_returns_to_its_state_before(tmp_path):
    with SqliteLedger(tmp_path / "l.db") as ledger:
        assert ledger.claim(message(), NOW)
        ledger.release(message())
        assert ledger.records() == {}  # never tried: it leaves the ledger and stays due
        assert ledger.claim(message(), NOW)
        ledger.record(message(), "retry", NOW, error="451", next_try=NOW)
        assert ledger.claim(message(), NOW + timedelta(minutes=1))
        ledger.release(message())
        assert ledger.records()["talk/announcement"].state == "retry"
        assert ledger.attempts("talk/announcement") == 1


def test_a_new_ledger_records_when_it_was_created_and_an_old_one_dates_from_its_first_event(tmp_path):
    before = ledger_module.clock()
    with SqliteLedger(tmp_path / "new.db") as ledger:
        assert before <= ledger.created <= ledger_module.clock()
    with SqliteLedger(tmp_path / "old.db") as ledger:
        ledger.record(message(), "sent", NOW - timedelta(days=30))
        ledger.db.execute("DELETE FROM meta")  # as a ledger written before the record was kept
    with SqliteLedger(tmp_path / "old.db") as ledger:
        assert ledger.created == NOW - timedelta(days=30)
