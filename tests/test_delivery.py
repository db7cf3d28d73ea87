"""send, send --due and log against real SMTP servers, a real ledger and real Maildirs."""

import mailbox
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

import announcer.deliver.ledger.sqlite as ledger_module
from announcer.cli import app
from announcer.deliver.ledger import SqliteLedger
from announcer.plan import PlannedMessage

from conftest import write_config
from smtp_server import PASSWORD, PASSWORD_ENV

runner = CliRunner()
TALK = """\
title: Dynamical Isometry
speaker: {name: Jeffrey Pennington, affiliation: Google}
start: 2027-02-21 14:00
"""
# 2027-02-21 14:00 EST: announcement due 2027-02-14 09:00 EST, reminder 13:00 EST on the day.
BOTH_DUE = "2027-02-21T18:30:00Z"
ANNOUNCEMENT_DUE = "2027-02-15T12:00:00Z"


def series(tmp_path, server=None, talks=None, **overrides):
    config = write_config(tmp_path, server, **overrides)
    for name, text in (talks or {"pennington.yaml": TALK}).items():
        (tmp_path / "talks" / name).write_text(text)
    return config


def send(config, *args):
    return runner.invoke(app, ["--config", str(config), "send", *args])


def states(tmp_path):
    with SqliteLedger(tmp_path / "announcer.db") as ledger:
        return {key: record.state for key, record in ledger.records().items()}


def test_due_messages_go_out_once_over_starttls(tmp_path, smtp_starttls, smtp_password_env):
    config = series(tmp_path, smtp_starttls)
    first = send(config, "--due", "--now", BOTH_DUE)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1] == "2 sent, 0 retry, 0 failed, 0 uncertain"
    received = smtp_starttls.messages
    assert len(received) == 2 and smtp_starttls.connections == 1
    assert all(m.rcpt_tos == ("seminar-list@example.org",) for m in received)
    assert all(m.mail_from == "seminar@example.org" for m in received)
    again = send(config, "--due", "--now", BOTH_DUE)
    assert again.exit_code == 0 and again.stdout.splitlines()[-1] == "0 sent, 0 retry, 0 failed, 0 uncertain"
    assert len(smtp_starttls.messages) == 2
    assert set(states(tmp_path).values()) == {"sent"}


def test_implicit_tls(tmp_path, smtp_tls, smtp_password_env):
    result = send(series(tmp_path, smtp_tls), "--due", "--now", ANNOUNCEMENT_DUE)
    assert result.exit_code == 0, result.output
    assert len(smtp_tls.messages) == 1


def test_wrong_password_fails_cleanly(tmp_path, smtp_starttls, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    result = send(series(tmp_path, smtp_starttls), "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    assert "authentication failed for 'mad'" in result.output
    assert "not-the-password" not in result.output and PASSWORD not in result.output
    assert "Traceback" not in result.output
    assert smtp_starttls.messages == []
    assert states(tmp_path) == {}  # no message failed: the pass stopped, both stay due (SPEC 8.5)
    assert [line for line in result.stderr.splitlines() if "authentication failed" in line] == \
        [line for line in result.stderr.splitlines() if line.startswith("stopped: ")]


def test_untrusted_certificate_is_refused(tmp_path, smtp_starttls, smtp_password_env):
    result = send(series(tmp_path, smtp_starttls, smtp={"ca_file": None}), "--due", "--now", ANNOUNCEMENT_DUE)
    assert result.exit_code == 3
    assert "certificate verification failed" in result.output
    assert smtp_starttls.messages == []


def test_missing_password_variable_is_bad_input_before_any_connection(tmp_path, smtp_starttls, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    result = send(series(tmp_path, smtp_starttls), "--due", "--now", BOTH_DUE)
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"password_env names ${PASSWORD_ENV}, which is not set")
    assert smtp_starttls.connections == 0


def test_451_then_success_delivers_once(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain)
    smtp_plain.fail("data", 451)
    first = send(config, "--due", "--now", ANNOUNCEMENT_DUE)
    assert first.exit_code == 3 and "451" in first.output
    assert states(tmp_path) == {"pennington/announcement": "retry"}
    too_soon = send(config, "--due", "--now", "2027-02-15T12:00:30Z")
    assert too_soon.exit_code == 0 and smtp_plain.messages == []
    later = send(config, "--due", "--now", "2027-02-15T12:01:00Z")
    assert later.exit_code == 0, later.output
    assert len(smtp_plain.messages) == 1
    assert states(tmp_path) == {"pennington/announcement": "sent"}


def test_550_fails_and_is_not_retried(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain)
    smtp_plain.fail("rcpt", 550)
    assert send(config, "--due", "--now", ANNOUNCEMENT_DUE).exit_code == 3
    assert states(tmp_path) == {"pennington/announcement": "failed"}
    assert send(config, "--due", "--now", "2027-02-16T12:00:00Z").exit_code == 0
    assert smtp_plain.messages == []


def test_drop_after_data_is_uncertain_and_never_resent(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain)
    smtp_plain.drop_after_data()
    result = send(config, "--due", "--now", ANNOUNCEMENT_DUE)
    assert result.exit_code == 3 and "uncertain" in result.output
    assert states(tmp_path) == {"pennington/announcement": "uncertain"}
    assert send(config, "--due", "--now", "2027-02-16T12:00:00Z").exit_code == 0
    assert len(smtp_plain.messages) == 1


def test_refused_connection_retries_and_a_later_pass_delivers(tmp_path, smtp_plain, closed_port):
    config = series(tmp_path, smtp_plain, smtp={"port": closed_port})
    result = send(config, "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3 and "connection refused" in result.output
    assert states(tmp_path) == {"pennington/announcement": "retry"}  # the pass stopped there
    config = series(tmp_path, smtp_plain)
    later = send(config, "--due", "--now", "2027-02-21T18:31:00Z")
    assert later.exit_code == 0, later.output
    assert len(smtp_plain.messages) == 2


def test_two_processes_at_once_send_each_message_once(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain, talks={
        f"talk{n}.yaml": TALK.replace("14:00", f"14:{n * 10:02d}") for n in range(4)})
    command = [sys.executable, "-m", "announcer", "--config", str(config), "send", "--due", "--now", BOTH_DUE]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    ids = [m.message()["Message-ID"] for m in smtp_plain.messages]
    assert len(ids) == 8 == len(set(ids))


def test_dry_run_sends_and_records_nothing(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain)
    result = send(config, "--due", "--dry-run", "--now", BOTH_DUE)
    assert result.exit_code == 0, result.output
    assert "Subject:" in result.stdout and "dry run: 2 messages would be sent" in result.stdout
    assert smtp_plain.connections == 0
    assert not (tmp_path / "announcer.db").exists()


def test_maildir_transport_writes_readable_messages(tmp_path):
    config = series(tmp_path)
    result = send(config, "--due", "--now", BOTH_DUE)
    assert result.exit_code == 0, result.output
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    subjects = sorted(message["Subject"] for message in box)
    assert len(subjects) == 2 and any("Dynamical Isometry" in s for s in subjects)
    with SqliteLedger(tmp_path / "announcer.db") as ledger:
        ids = {record.message_id for record in ledger.records().values()}
    assert ids == {message["Message-ID"] for message in box}


def test_send_one_refuses_a_sent_message_unless_forced(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain)
    first = send(config, "pennington", "--kind", "announcement")
    assert first.exit_code == 0, first.output
    refused = send(config, "pennington", "--kind", "announcement")
    assert refused.exit_code == 1 and "already sent" in refused.stderr
    forced = send(config, "pennington", "--kind", "announcement", "--force")
    assert forced.exit_code == 0, forced.output
    ids = [m.message()["Message-ID"] for m in smtp_plain.messages]
    assert len(ids) == 2 and ids[0] != ids[1]
    unknown = send(config, "penington", "--kind", "announcement")
    assert unknown.exit_code == 1 and 'did you mean "pennington"' in unknown.stderr


def test_missed_messages_are_recorded_and_never_sent(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain)
    result = send(config, "--due", "--now", "2027-02-21T19:00:01Z")
    assert result.exit_code == 0
    assert set(states(tmp_path).values()) == {"missed"}
    assert smtp_plain.messages == []
    log = runner.invoke(app, ["--config", str(config), "log"])
    assert "pennington  announcement  missed" in log.stdout


def test_log_shows_message_ids_and_errors(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain)
    smtp_plain.fail("data", 451)
    send(config, "--due", "--now", ANNOUNCEMENT_DUE)
    send(config, "--due", "--now", "2027-02-15T12:05:00Z")
    lines = runner.invoke(app, ["--config", str(config), "log", "pennington"]).stdout.splitlines()
    assert "announcement  retry" in lines[0] and "451" in lines[0]
    assert "announcement  sent  <pennington.announcement." in lines[1]
    assert runner.invoke(app, ["--config", str(config), "log", "other"]).stdout == 'nothing recorded for talk "other"\n'


def test_tentative_talk_is_not_sent_unless_forced(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain, talks={"pennington.yaml": TALK + "status: tentative\n"})
    assert send(config, "--due", "--now", BOTH_DUE).stdout.splitlines()[-1].startswith("0 sent")
    refused = send(config, "pennington", "--kind", "announcement")
    assert refused.exit_code == 1 and "the talk is tentative" in refused.stderr
    assert send(config, "pennington", "--kind", "announcement", "--force").exit_code == 0
    assert len(smtp_plain.messages) == 1


def test_approved_header_reaches_the_server_but_never_the_output(tmp_path, smtp_plain, monkeypatch):
    monkeypatch.setenv("LIST_MODERATOR_PASSWORD", "s3cret-moderator")
    config = series(tmp_path, smtp_plain, mail={"approved_password_env": "LIST_MODERATOR_PASSWORD"})
    dry = send(config, "--due", "--dry-run", "--now", ANNOUNCEMENT_DUE)
    assert "Approved: ********" in dry.stdout and "s3cret" not in dry.output
    result = send(config, "--due", "--now", ANNOUNCEMENT_DUE)
    assert result.exit_code == 0 and "s3cret" not in result.output
    assert smtp_plain.messages[0].message()["Approved"] == "s3cret-moderator"
    preview = runner.invoke(app, ["--config", str(config), "preview", "--out", str(tmp_path / "eml"),
                                  "--now", "2027-02-01T00:00:00Z"])
    assert preview.exit_code == 0
    for path in (tmp_path / "eml").iterdir():
        assert b"s3cret" not in path.read_bytes() and b"Approved: ********" in path.read_bytes()
    assert "s3cret" not in runner.invoke(app, ["--config", str(config), "log"]).output


def test_missing_approved_variable_stops_before_sending(tmp_path, smtp_plain, monkeypatch):
    monkeypatch.delenv("LIST_MODERATOR_PASSWORD", raising=False)
    config = series(tmp_path, smtp_plain, mail={"approved_password_env": "LIST_MODERATOR_PASSWORD"})
    result = send(config, "--due", "--now", ANNOUNCEMENT_DUE)
    assert result.exit_code == 1 and "$LIST_MODERATOR_PASSWORD, which is not set" in result.stderr
    assert smtp_plain.connections == 0


def test_a_pass_keeps_the_message_ids_it_sent_not_the_messages(tmp_path):
    from datetime import datetime

    from announcer.deliver.dispatch import make_dispatcher
    from announcer.sources.series import load_series

    loaded = load_series(str(series(tmp_path)))
    with SqliteLedger(loaded.config.ledger_path) as ledger:
        result = make_dispatcher(loaded, ledger, dry_run=False).due_pass(datetime.fromisoformat(BOTH_DUE))
    assert [o.state for o in result.outcomes] == ["sent", "sent"]
    assert all(o.email is None and o.message_id.startswith("<pennington.") for o in result.outcomes)
    assert str(result.outcomes[0]).endswith(result.outcomes[0].message_id)
    assert len(mailbox.Maildir(tmp_path / "outbox")) == 2


def test_send_force_takes_over_the_claim_of_a_dead_run_once_its_lease_ran_out(tmp_path, smtp_plain, monkeypatch):
    config = series(tmp_path, smtp_plain)
    due = datetime(2027, 2, 14, 14, 0, tzinfo=timezone.utc)
    claimed = PlannedMessage("pennington", "announcement", "pennington/announcement", due, due + timedelta(days=7),
                             "due", 0, "<x@y>", None)
    code = ("import sys, datetime; from announcer.deliver.ledger import SqliteLedger; from announcer.plan import PlannedMessage; "
            f"assert SqliteLedger(sys.argv[1]).claim({claimed!r}, {due!r})")  # a run that dies holding its claim
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "announcer.db")], check=True, timeout=60)
    refused = send(config, "pennington", "--kind", "announcement", "--force")
    assert refused.exit_code == 1 and "being sent" in refused.stderr  # its owner may still be sending it
    later = ledger_module.clock() + ledger_module.LEASE + timedelta(seconds=1)
    monkeypatch.setattr(ledger_module, "clock", lambda: later)
    forced = send(config, "pennington", "--kind", "announcement", "--force")
    assert forced.exit_code == 0, forced.output
    assert len(smtp_plain.messages) == 1
