"""Logging in (SPEC 8.5 "Connection failures"): UTF-8 passwords, refused logins that fail no
message and are tried at most once an hour with the same settings, and `send --failed`.
Against real aiosmtpd servers over STARTTLS, counting the AUTH commands they receive."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from typer.testing import CliRunner

import announcer.commands.show
import announcer.deliver.dispatch
import announcer.deliver.ledger
from announcer.cli import app
from announcer.deliver.ledger import SqliteLedger

from conftest import write_config
from smtp_server import PASSWORD, PASSWORD_ENV, MailServer

runner = CliRunner()
UNICODE_PASSWORD = "pässwörd-Ünïcødé-€"
TALK = """\
title: {title}
speaker: {{name: Jeffrey Pennington, affiliation: Google}}
start: {start}
"""
BOTH_DUE = "2027-02-15T15:00:00Z"  # the two talks' announcements are due (7 days before, 09:00 EST)


def series(tmp_path, server, **overrides):
    config = write_config(tmp_path, server, **overrides)
    (tmp_path / "talks" / "a.yaml").write_text(TALK.format(title="First", start="2027-02-21 14:00"))
    (tmp_path / "talks" / "b.yaml").write_text(TALK.format(title="Second", start="2027-02-22 14:00"))
    return config


def run(config, *args):
    return runner.invoke(app, ["--config", str(config), *args])


def states(tmp_path):
    with SqliteLedger(tmp_path / "announcer.db") as ledger:
        return {key: record.state for key, record in ledger.records().items()}


@pytest.fixture
def unicode_server(trustme_ca, smtp_ca):
    server = MailServer("starttls", trustme_ca, smtp_ca, password=UNICODE_PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture
def later(monkeypatch):
    """Sets the real clock (leases, refused logins) to a timedelta after the test's start."""
    start = announcer.deliver.ledger.clock()

    def move(delta: timedelta) -> None:
        moved = start + delta
        for module in (announcer.deliver.ledger, announcer.deliver.dispatch, announcer.commands.show):
            if hasattr(module, "clock"):
                monkeypatch.setattr(module, "clock", lambda: moved)
    return move


def test_a_non_ascii_password_logs_in_as_utf8(tmp_path, unicode_server, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, UNICODE_PASSWORD)
    result = run(series(tmp_path, unicode_server), "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 0, result.output
    assert len(unicode_server.messages) == 2 and unicode_server.auth_attempts == 1


def test_a_wrong_non_ascii_password_is_one_line_naming_no_character_and_fails_no_message(
        tmp_path, unicode_server, monkeypatch):
    wrong = "pässwört-ñ"
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    config = series(tmp_path, unicode_server)
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert not set("äöñü") & set(result.output) and "position" not in result.output
    assert [line for line in result.stderr.splitlines() if line] == [line for line in result.stderr.splitlines()
                                                                     if line.startswith("stopped: ")]
    assert "authentication failed for 'mad'" in result.stderr
    assert states(tmp_path) == {}  # released: nothing claimed, nothing failed, nothing uncertain
    shown = run(config, "plan", "--now", BOTH_DUE)
    assert [line.split()[-1] for line in shown.stdout.splitlines()[1:3]] == ["due", "due"]
    assert unicode_server.messages == [] and unicode_server.auth_attempts == 1


def test_cron_passes_with_a_wrong_password_log_in_once_an_hour_and_at_once_after_a_change(
        tmp_path, smtp_starttls, monkeypatch, later):
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
    config = series(tmp_path, smtp_starttls)
    first = run(config, "send", "--due", "--now", BOTH_DUE)
    assert first.exit_code == 3
    assert first.stderr.count("\n") == 1 and first.stderr.startswith("stopped: 127.0.0.1:")
    assert "authentication failed for 'mad': 535" in first.stderr
    assert smtp_starttls.auth_attempts == 1 and states(tmp_path) == {}

    for minutes in (10, 20, 50):  # cron, every ten minutes or so: no login, the reason and the next try
        later(timedelta(minutes=minutes))
        skipped = run(config, "send", "--due", "--now", BOTH_DUE)
        assert skipped.exit_code == 3, skipped.output
        assert "authentication failed for 'mad'" in skipped.stderr, skipped.stderr
        assert "login not tried again before " in skipped.stderr and skipped.stderr.count("\n") == 1
        assert smtp_starttls.auth_attempts == 1 and smtp_starttls.connections == 1, skipped.stderr
    assert states(tmp_path) == {}

    shown = run(config, "plan", "--now", BOTH_DUE)
    assert [line.split()[-1] for line in shown.stdout.splitlines()[1:3]] == ["due", "due"]
    assert "due: 127.0.0.1:" in shown.stdout and "authentication failed" in shown.stdout
    as_json = run(config, "plan", "--json", "--now", BOTH_DUE)
    assert [row["state"] for row in json.loads(as_json.stdout)][:2] == ["due", "due"]
    assert "authentication failed" in as_json.stderr

    later(timedelta(minutes=61))  # an hour after the refused login: one more try
    again = run(config, "send", "--due", "--now", BOTH_DUE)
    assert again.exit_code == 3 and smtp_starttls.auth_attempts == 2

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)  # the secret changed: log in at once
    fixed = run(config, "send", "--due", "--now", BOTH_DUE)
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.splitlines()[-1] == "2 sent, 0 retry, 0 failed, 0 uncertain"
    assert smtp_starttls.auth_attempts == 3 and len(smtp_starttls.messages) == 2

    stored = (tmp_path / "announcer.db").read_bytes() + b"".join(
        path.read_bytes() for path in tmp_path.glob("announcer.db-*"))
    assert b"wrong-password" not in stored and PASSWORD.encode() not in stored


def test_a_certificate_that_does_not_verify_waits_until_the_settings_change(tmp_path, smtp_starttls,
                                                                          smtp_password_env, smtp_ca):
    config = series(tmp_path, smtp_starttls, smtp={"ca_file": None})
    first = run(config, "send", "--due", "--now", BOTH_DUE)
    assert first.exit_code == 3 and "certificate verification failed" in first.stderr
    assert states(tmp_path) == {} and smtp_starttls.connections == 1
    second = run(config, "send", "--due", "--now", BOTH_DUE)
    assert second.exit_code == 3 and "login not tried again before" in second.stderr
    assert smtp_starttls.connections == 1  # not even connected
    config = series(tmp_path, smtp_starttls, smtp={"ca_file": str(smtp_ca)})
    fixed = run(config, "send", "--due", "--now", BOTH_DUE)
    assert fixed.exit_code == 0, fixed.output
    assert len(smtp_starttls.messages) == 2


def test_send_failed_resends_failed_messages_whose_talk_has_not_started(tmp_path, smtp_plain):
    config = series(tmp_path, smtp_plain)
    (tmp_path / "talks" / "early.yaml").write_text(TALK.format(title="Early", start="2027-02-10 14:00"))
    smtp_plain.fail("rcpt", 550, count=3)
    assert run(config, "send", "--due", "--now", "2027-02-04T12:00:00Z").exit_code == 3  # early's announcement
    assert run(config, "send", "--due", "--now", BOTH_DUE).exit_code == 3
    assert {key: value for key, value in states(tmp_path).items() if "announcement" in key} == {
        "a/announcement": "failed", "b/announcement": "failed", "early/announcement": "failed"}
    nothing = run(config, "send", "--due", "--now", "2027-02-15T16:00:00Z")
    assert nothing.exit_code == 0 and smtp_plain.messages == []  # a pass never resends failed messages

    result = run(config, "send", "--failed", "--now", "2027-02-16T12:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2 sent, 0 retry, 0 failed, 0 uncertain"
    assert {key: value for key, value in states(tmp_path).items() if "announcement" in key} == {
        "a/announcement": "sent", "b/announcement": "sent", "early/announcement": "failed"}  # its talk started


def test_send_failed_and_catch_up_are_usage_errors_with_other_modes(tmp_path):
    config = series(tmp_path, None)
    assert run(config, "send", "--failed", "--due").exit_code == 2
    assert run(config, "send", "a", "--kind", "announcement", "--catch-up").exit_code == 2


def test_no_refused_login_is_remembered_after_a_good_one(tmp_path, smtp_starttls, smtp_password_env):
    config = series(tmp_path, smtp_starttls)
    assert run(config, "send", "--due", "--now", BOTH_DUE).exit_code == 0
    with sqlite3.connect(tmp_path / "announcer.db") as db:
        assert db.execute("SELECT name FROM meta WHERE name = 'refused_login'").fetchall() == []
