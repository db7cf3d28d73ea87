"""`send --to ADDRESS (TALK --kind KIND | --due)` (SPEC 8.5 "A test send"): to ADDRESS alone, in the
envelope and To:, subject "[TEST] ", no Approved:, a fresh Message-ID, nothing in the ledger."""

from __future__ import annotations

from typer.testing import CliRunner

from announcer.cli import app
from announcer.deliver.ledger import SqliteLedger

from conftest import write_config
from smtp_server import PASSWORD

runner = CliRunner()
TALK = "title: First\nspeaker: Ada Lovelace\nstart: 2027-02-21 14:00\n"
DUE = "2027-02-15T15:00:00Z"
ME = "organiser@example.edu"


def series(tmp_path, server, monkeypatch):
    monkeypatch.setenv("LIST_MODERATOR_PASSWORD", "moderator-Secret-77")
    config = write_config(tmp_path, server, mail={"approved_password_env": "LIST_MODERATOR_PASSWORD"})
    (tmp_path / "talks" / "a.yaml").write_text(TALK)
    return config


def run(config, *args):
    return runner.invoke(app, ["--config", str(config), *args])


def records(tmp_path):
    with SqliteLedger(tmp_path / "announcer.db") as ledger:
        return ledger.records()


def test_a_test_send_of_one_message_goes_to_the_address_alone_and_is_not_recorded(
        tmp_path, smtp_starttls, smtp_password_env, monkeypatch):
    config = series(tmp_path, smtp_starttls, monkeypatch)
    result = run(config, "send", "a", "--kind", "announcement", "--to", ME)
    assert result.exit_code == 0, result.output
    [received] = smtp_starttls.messages
    assert received.rcpt_tos == (ME,)
    message = received.message()
    assert message["To"] == ME and message["Approved"] is None
    assert message["Subject"].startswith("[TEST] ") and "First" in message["Subject"]
    assert result.stdout.splitlines()[-1] == "1 sent, 0 retry, 0 failed, 0 uncertain (a test send: nothing recorded)"
    assert f"test send to {ME}, not recorded" in result.stdout
    assert not (tmp_path / "announcer.db").exists()   # nothing recorded, not even a ledger made for it
    assert PASSWORD not in result.output and "moderator-Secret-77" not in result.output

    # The real send afterwards still goes to the list, with Approved: and another Message-ID.
    real = run(config, "send", "--due", "--now", DUE)
    assert real.exit_code == 0, real.output
    sent = smtp_starttls.messages[1]
    assert sent.rcpt_tos == ("seminar-list@example.org",)
    assert sent.message()["Approved"] == "moderator-Secret-77"
    assert not sent.message()["Subject"].startswith("[TEST]")
    assert sent.message()["Message-ID"] != message["Message-ID"]


def test_a_test_send_of_the_due_messages_leaves_them_due(tmp_path, smtp_starttls, smtp_password_env,
                                                          monkeypatch):
    config = series(tmp_path, smtp_starttls, monkeypatch)
    assert run(config, "send", "--due", "--now", "2027-02-14T13:00:00Z").exit_code == 0   # makes the ledger
    before = (tmp_path / "announcer.db").read_bytes()
    result = run(config, "send", "--due", "--to", ME, "--now", DUE)
    assert result.exit_code == 0, result.output
    [received] = smtp_starttls.messages
    assert received.rcpt_tos == (ME,) and received.message()["Subject"].startswith("[TEST] ")
    assert records(tmp_path) == {}
    assert (tmp_path / "announcer.db").read_bytes() == before
    shown = run(config, "plan", "--now", DUE)
    assert shown.stdout.splitlines()[1].split()[-1] == "due"
    twice = run(config, "send", "--due", "--to", ME, "--now", DUE)   # a test send can be repeated
    assert twice.exit_code == 0 and len(smtp_starttls.messages) == 2
    assert smtp_starttls.messages[0].message()["Message-ID"] != smtp_starttls.messages[1].message()["Message-ID"]


def test_a_test_send_needs_one_plain_address_and_no_failed_or_force(tmp_path, smtp_starttls, smtp_password_env,
                                                                     monkeypatch):
    config = series(tmp_path, smtp_starttls, monkeypatch)
    bad = run(config, "send", "--due", "--to", "a@x.org, b@x.org", "--now", DUE)
    assert bad.exit_code == 2 and bad.stderr.startswith("--to 'a@x.org, b@x.org': give one e-mail address")
    assert run(config, "send", "--failed", "--to", ME).exit_code == 2
    assert run(config, "send", "a", "--kind", "announcement", "--force", "--to", ME).exit_code == 2
    assert smtp_starttls.messages == []
