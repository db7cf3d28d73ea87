"""A new ledger does not send the past (SPEC 5): messages that fell due more than an hour before
the ledger was created are held, listed by plan, logged once by the daemon, and sent only by
`send --due --catch-up`. Real clock, real ledger, real Maildir."""

from __future__ import annotations

import mailbox
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from announcer.cli import app
from announcer.deliver.ledger import SqliteLedger
from announcer.run.daemon import DaemonCore
from announcer.sources.config import load_config

from conftest import write_config

runner = CliRunner()
NEW_YORK = ZoneInfo("America/New_York")
MESSAGES = [{"kind": "announcement", "before": "7d"}, {"kind": "reminder", "before": "1d"}]


def series(tmp_path):
    """A talk in two days: announced five days ago (last week), reminded tomorrow."""
    now = datetime.now(timezone.utc)
    start = (now + timedelta(days=2)).astimezone(NEW_YORK).replace(second=0, microsecond=0)
    config = write_config(tmp_path, messages=MESSAGES)
    (tmp_path / "talks" / "talk.yaml").write_text(
        f"title: Held Back\nspeaker: Ada Lovelace\nstart: {start:%Y-%m-%d %H:%M}\n")
    return config, start


def run(config, *args):
    return runner.invoke(app, ["--config", str(config), *args])


def subjects(tmp_path):
    box = tmp_path / "outbox"
    return sorted(str(m["Subject"]) for m in mailbox.Maildir(box)) if box.exists() else []


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def test_a_deleted_ledger_holds_last_weeks_announcement_and_sends_tomorrows_reminder(tmp_path):
    config, start = series(tmp_path)
    announced = run(config, "send", "--due", "--now", iso(start - timedelta(days=7)))
    assert announced.exit_code == 0 and len(subjects(tmp_path)) == 1  # last week, on the old machine
    (tmp_path / "announcer.db").unlink()
    for leftover in tmp_path.glob("announcer.db-*"):
        leftover.unlink()
    (tmp_path / "outbox").rename(tmp_path / "old-outbox")

    shown = run(config, "plan")
    assert shown.exit_code == 0, shown.output
    assert [line.split()[-1] for line in shown.stdout.splitlines()[1:3]] == ["held", "pending"]
    assert "held: 1 message(s) fell due before" in shown.stdout and "send --due --catch-up" in shown.stdout

    tomorrow = iso(start - timedelta(days=1) + timedelta(minutes=5))
    result = run(config, "send", "--due", "--now", tomorrow)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == ("1 sent, 0 retry, 0 failed, 0 uncertain, "
                                              "1 held (send --due --catch-up sends them)")
    assert subjects(tmp_path) == [s for s in subjects(tmp_path) if s.startswith("Reminder")] != []

    as_json = run(config, "plan", "--json")
    assert "held: 1 message(s)" in as_json.stderr

    caught_up = run(config, "send", "--due", "--catch-up", "--now", tomorrow)
    assert caught_up.exit_code == 0, caught_up.output
    assert caught_up.stdout.splitlines()[-1] == "1 sent, 0 retry, 0 failed, 0 uncertain"
    assert len(subjects(tmp_path)) == 2


def test_a_time_before_the_ledger_was_created_holds_nothing(tmp_path):
    config, start = series(tmp_path)
    with SqliteLedger(tmp_path / "announcer.db"):
        pass
    rehearsal = run(config, "plan", "--now", iso(start - timedelta(days=7) + timedelta(minutes=1)))
    assert rehearsal.stdout.splitlines()[1].split()[-1] == "due"
    assert "held" not in rehearsal.stdout


def test_catch_up_sends_no_held_message_whose_talk_started(tmp_path):
    config, start = series(tmp_path)
    after = run(config, "send", "--due", "--catch-up", "--now", iso(start + timedelta(minutes=1)))
    assert after.exit_code == 0 and subjects(tmp_path) == []


def test_the_daemon_logs_each_held_message_once(tmp_path):
    config, start = series(tmp_path)
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)
    try:
        now = datetime.now(timezone.utc)
        core.run_pass(now)
        core.run_pass(now + timedelta(seconds=60))
    finally:
        core.close()
    held = [line for line in lines if line.startswith("held talk announcement: ")]
    assert len(held) == 1 and "send --due --catch-up" in held[0]
    assert subjects(tmp_path) == []
