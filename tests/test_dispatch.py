"""The one pass, driven directly: plan -> claim -> build -> transport -> record, with a real
SQLite ledger and a real Maildir (SMTP faults are in test_delivery.py)."""

from __future__ import annotations

import mailbox
from datetime import datetime

from announcer.deliver.dispatch import make_dispatcher
from announcer.deliver.ledger import SqliteLedger
from announcer.sources.series import load_series

from series_files import PENNINGTON, write_series

# 2027-02-21 14:00 EST: announcement due 2027-02-14 09:00 EST, reminder at 13:00 on the day.
BOTH_DUE = datetime.fromisoformat("2027-02-21T18:30:00+00:00")
SECOND = PENNINGTON.replace("2027-02-21", "2027-02-22").replace("Pennington", "Penrose")


def run_pass(config, now=BOTH_DUE, dry_run=False, **kw):
    loaded = load_series(str(config))
    with SqliteLedger(loaded.config.ledger_path) as ledger:
        dispatcher = make_dispatcher(loaded, ledger, dry_run=dry_run)
        for name, value in kw.items():
            setattr(dispatcher, name, value)
        return dispatcher.due_pass(now)


def recorded(config):
    with SqliteLedger(config.parent / "announcer.db") as ledger:
        return {(r.talk_id, r.kind): r.state for r in ledger.records().values()}


def test_a_pass_sends_each_due_message_once_and_the_next_pass_none(tmp_path):
    config = write_series(tmp_path, {"a.yaml": PENNINGTON, "b.yaml": SECOND})
    first = run_pass(config)
    assert sorted((o.message.talk_id, o.message.kind, o.state) for o in first.outcomes) == [
        ("a", "announcement", "sent"), ("a", "reminder", "sent"), ("b", "announcement", "sent")]
    assert run_pass(config).outcomes == []
    assert len(mailbox.Maildir(tmp_path / "outbox")) == 3
    assert recorded(config) == {("a", "announcement"): "sent", ("a", "reminder"): "sent",
                                ("b", "announcement"): "sent"}
    assert first.exit_code == 0 and first.summary == "3 sent, 0 retry, 0 failed, 0 uncertain"


def test_a_message_that_fails_to_render_stays_due_and_the_others_go(tmp_path):
    config = write_series(tmp_path, {"a.yaml": PENNINGTON, "b.yaml": SECOND})
    config.write_text(config.read_text().replace('domain = "mad.example.edu"',
                                                 'domain = "mad.example.edu"\ntemplates_dir = "overrides"'))
    (tmp_path / "overrides").mkdir()
    (tmp_path / "overrides" / "reminder.subject.j2").write_text("{{ talk.no_such_field }}\n")
    result = run_pass(config)
    states = {(o.message.talk_id, o.message.kind): o.state for o in result.outcomes}
    assert states == {("a", "announcement"): "sent", ("a", "reminder"): "invalid", ("b", "announcement"): "sent"}
    assert "reminder.subject.j2:1: template error" in next(o.detail for o in result.outcomes if o.state == "invalid")
    assert result.exit_code == 1
    assert ("a", "reminder") not in recorded(config)  # nothing claimed: it is still due
    (tmp_path / "overrides" / "reminder.subject.j2").write_text("Soon: {{ talk.title }}\n")
    assert [(o.message.kind, o.state) for o in run_pass(config).outcomes] == [("reminder", "sent")]


def test_a_dry_run_pass_builds_every_due_message_and_writes_nothing(tmp_path):
    config = write_series(tmp_path, {"a.yaml": PENNINGTON})
    run_pass(config, now=datetime.fromisoformat("2027-02-15T12:00:00+00:00"))  # the announcement goes
    before = recorded(config)
    result = run_pass(config, dry_run=True)
    assert [(o.message.kind, o.state) for o in result.outcomes] == [("reminder", "dry-run")]
    assert result.outcomes[0].email["Subject"].startswith("Reminder")
    assert recorded(config) == before and len(mailbox.Maildir(tmp_path / "outbox")) == 1


def test_a_pass_told_to_stop_sends_no_further_message(tmp_path):
    config = write_series(tmp_path, {"a.yaml": PENNINGTON, "b.yaml": SECOND})
    asked = []

    def stopping():
        asked.append(1)
        return len(asked) > 1  # after the first message

    result = run_pass(config, stopping=stopping)
    assert [o.state for o in result.outcomes] == ["sent"]
    assert result.stopped_by == "shutting down before the next message" and result.exit_code == 3
    assert len(run_pass(config).outcomes) == 2  # the others were left due
