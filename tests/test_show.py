"""`plan` (table and JSON, sent times, warnings) and `log`, through the real CLI."""

import json
from pathlib import Path

from typer.testing import CliRunner

from announcer.cli import app

from series_files import PENNINGTON, write_series

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_plan_json_has_the_spec_keys(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    result = run("--config", config, "plan", "--json", "--now", "2027-02-15T00:00Z")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows == [
        {"talk": "pennington", "kind": "announcement", "due": "2027-02-14T09:00:00-05:00", "state": "due"},
        {"talk": "pennington", "kind": "reminder", "due": "2027-02-21T13:00:00-05:00", "state": "pending"},
    ]


def test_plan_hides_past_messages_unless_all(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    late = run("--config", config, "plan", "--now", "2027-03-01T00:00Z")
    assert late.exit_code == 0 and "nothing planned" in late.stdout
    everything = run("--config", config, "plan", "--all", "--now", "2027-03-01T00:00Z")
    assert "missed" in everything.stdout and "announcement" in everything.stdout


def test_plan_table(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    result = run("--config", config, "plan", "--now", "2027-02-15T00:00Z")
    assert result.stdout.splitlines() == [
        "DUE (America/New_York)    TALK        KIND          STATE",
        "Sun 2027-02-14 09:00 EST  pennington  announcement  due",
        "Sun 2027-02-21 13:00 EST  pennington  reminder      pending",
    ]


def test_plan_all_shows_a_sent_message_when_it_went_out_not_its_recomputed_due_time(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    sent = run("--config", config, "send", "--due", "--now", "2027-02-15T12:30-05:00")  # a day late
    assert sent.exit_code == 0, sent.output
    (tmp_path / "talks" / "pennington.yaml").write_text(PENNINGTON.replace("2027-02-21", "2027-02-25"))
    result = run("--config", config, "plan", "--all", "--now", "2027-02-16T00:00Z")
    assert result.stdout.splitlines() == [
        "DUE (America/New_York)    TALK        KIND          STATE",
        "Mon 2027-02-15 12:30 EST  pennington  announcement  sent",
        "Mon 2027-02-15 19:00 EST  pennington  update        due",
        "Thu 2027-02-25 13:00 EST  pennington  reminder      pending",
    ]
    rows = json.loads(run("--config", config, "plan", "--all", "--json", "--now", "2027-02-16T00:00Z").stdout)
    assert rows[0] == {"talk": "pennington", "kind": "announcement", "due": "2027-02-18T09:00:00-05:00",
                       "state": "sent", "sent": "2027-02-15T12:30:00-05:00"}
    assert all("sent" not in row for row in rows[1:])


def test_plan_refuses_bad_input(tmp_path):
    config = write_series(tmp_path, {"bad.yaml": "title: T\nstart: 14:00\n"})
    result = run("--config", config, "plan")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tmp_path}/talks/bad.yaml:2:")


def test_plan_prints_its_warnings_as_check_and_send_do(tmp_path):
    # A talk that was announced and whose file is gone: every command warns the same way.
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    assert run("--config", config, "send", "--due", "--now", "2027-02-15T00:00Z").exit_code == 0
    (tmp_path / "talks" / "pennington.yaml").unlink()
    plan = run("--config", config, "plan", "--now", "2027-02-15T00:00Z")
    send = run("--config", config, "send", "--due", "--now", "2027-02-15T00:00Z")
    warning = 'warning: talk "pennington" was announced but is no longer in'
    assert plan.exit_code == 0 and plan.stderr.startswith(warning)
    assert warning in send.stdout
