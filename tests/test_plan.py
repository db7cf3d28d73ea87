from dataclasses import replace
from datetime import datetime, timezone

from announcer.plan import Announced, Record, message_id_for, plan_messages, sendable
from announcer.sources.config import load_config
from announcer.sources.talks import load_talks

from series_files import PENNINGTON, write_series

UTC = timezone.utc


def setup(tmp_path, files=None):
    config = load_config(write_series(tmp_path, files or {"pennington.yaml": PENNINGTON}))
    return config, load_talks(config.series).talks


def states(plan):
    return [(m.kind, m.state) for m in plan.messages]


def test_states_over_time(tmp_path):
    config, talks = setup(tmp_path)
    at = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    assert states(plan_messages(config, talks, {}, {}, at(2027, 2, 14, 13, 59))) == [
        ("announcement", "pending"), ("reminder", "pending")]
    assert states(plan_messages(config, talks, {}, {}, at(2027, 2, 14, 14, 0))) == [
        ("announcement", "due"), ("reminder", "pending")]
    assert states(plan_messages(config, talks, {}, {}, at(2027, 2, 21, 18, 0))) == [
        ("announcement", "due"), ("reminder", "due")]
    assert states(plan_messages(config, talks, {}, {}, at(2027, 2, 21, 19, 0))) == [
        ("announcement", "missed"), ("reminder", "missed")]


def test_due_times_and_keys(tmp_path):
    config, talks = setup(tmp_path)
    plan = plan_messages(config, talks, {}, {}, datetime(2027, 1, 1, tzinfo=UTC))
    announcement, reminder = plan.messages
    assert announcement.due == datetime(2027, 2, 14, 14, 0, tzinfo=UTC)
    assert reminder.due == datetime(2027, 2, 21, 18, 0, tzinfo=UTC)
    assert announcement.key == "pennington/announcement"
    assert reminder.key == "pennington/reminder/1h/20270221T1900Z"
    assert announcement.message_id == message_id_for("pennington/announcement", "mad.example.edu")
    assert announcement.message_id.startswith("<pennington.announcement.")
    assert reminder.thread_id == announcement.message_id and announcement.thread_id is None
    assert reminder.closes == datetime(2027, 2, 21, 19, 0, tzinfo=UTC)


def test_tentative_and_cancelled_are_skipped(tmp_path):
    config, talks = setup(tmp_path, {"t.yaml": PENNINGTON + "status: tentative\n",
                                     "c.yaml": PENNINGTON + "status: cancelled\n"})
    plan = plan_messages(config, talks, {}, {}, datetime(2027, 2, 21, 18, 30, tzinfo=UTC))
    assert {m.state for m in plan.messages} == {"skipped"}
    assert sendable(plan, {}, datetime(2027, 2, 21, 18, 30, tzinfo=UTC)) == []


def test_an_empty_slot_is_planned_as_tba_and_never_sendable(tmp_path):
    config, talks = setup(tmp_path, {"slot.yaml": "start: 2027-02-21 14:00\n",
                                     "tentative.yaml": "start: 2027-02-22 14:00\nstatus: tentative\n",
                                     "titled.yaml": "title: T\nstart: 2027-02-21 14:00\n",
                                     "speaker.yaml": "speaker: S\nstart: 2027-02-21 14:00\n"})
    for now in (datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 2, 21, 18, 30, tzinfo=UTC),
                datetime(2027, 3, 1, tzinfo=UTC)):
        plan = plan_messages(config, talks, {}, {}, now)
        assert {m.state for m in plan.messages if m.talk_id in ("slot", "tentative")} == {"tba"}
        assert {m.state for m in plan.messages if m.talk_id not in ("slot", "tentative")} != {"tba"}
        assert [m.talk_id for m in sendable(plan, {}, now) if m.talk_id in ("slot", "tentative")] == []


def test_sent_record_wins_and_retry_waits(tmp_path):
    config, talks = setup(tmp_path)
    now = datetime(2027, 2, 21, 18, 30, tzinfo=UTC)
    first = plan_messages(config, talks, {}, {}, now).messages
    records = {
        first[0].key: Record(first[0].key, "pennington", "announcement", first[0].due, "sent"),
        first[1].key: Record(first[1].key, "pennington", "reminder", first[1].due, "retry",
                             next_try=datetime(2027, 2, 21, 18, 40, tzinfo=UTC)),
    }
    plan = plan_messages(config, talks, records, {}, now)
    assert states(plan) == [("announcement", "sent"), ("reminder", "retry")]
    assert sendable(plan, records, now) == []
    later = datetime(2027, 2, 21, 18, 41, tzinfo=UTC)
    assert [m.kind for m in sendable(plan_messages(config, talks, records, {}, later), records, later)] == ["reminder"]


def test_change_after_announcement_plans_update_first(tmp_path):
    config, talks = setup(tmp_path)
    talk = talks[0]
    old = replace(talk, location="Eck 206").facts
    now = datetime(2027, 2, 21, 18, 30, tzinfo=UTC)
    plan = plan_messages(config, talks, {}, {talk.id: Announced(old, 0)}, now)
    update = next(m for m in plan.messages if m.kind == "update")
    assert update.key == "pennington/update/1" and update.sequence == 1
    assert [(c.field, c.old, c.new) for c in update.changes] == [("location", "Eck 206", "Auditorium Hall 150")]
    assert [m.kind for m in sendable(plan, {}, now)] == ["update", "announcement", "reminder"]


def test_cancellation_after_announcement(tmp_path):
    config, talks = setup(tmp_path, {"pennington.yaml": PENNINGTON + "status: cancelled\n"})
    talk = talks[0]
    announced = {talk.id: Announced(replace(talk, status="confirmed").facts, 2)}
    plan = plan_messages(config, talks, {}, announced, datetime(2027, 2, 20, tzinfo=UTC))
    assert [(m.kind, m.state, m.sequence) for m in plan.messages] == [
        ("announcement", "skipped", 3), ("cancellation", "due", 3), ("reminder", "skipped", 3)]


def test_moved_talk_gets_new_reminder_key_and_old_one_is_history(tmp_path):
    config, talks = setup(tmp_path)
    old_key = "pennington/reminder/1h/20270220T1900Z"
    records = {old_key: Record(old_key, "pennington", "reminder", datetime(2027, 2, 20, 18, tzinfo=UTC), "sent")}
    plan = plan_messages(config, talks, records, {}, datetime(2027, 2, 21, 18, 30, tzinfo=UTC))
    assert [m.key for m in plan.history] == [old_key]
    reminder = next(m for m in plan.messages if m.kind == "reminder")
    assert reminder.state == "due"


def test_vanished_talk_warns_and_plans_nothing(tmp_path):
    config, talks = setup(tmp_path)
    plan = plan_messages(config, talks, {}, {"gone-talk": Announced({}, 0)}, datetime(2027, 1, 1, tzinfo=UTC))
    assert len(plan.warnings) == 1 and '"gone-talk" was announced but is no longer in' in plan.warnings[0]
    assert {m.talk_id for m in plan.messages} == {"pennington"}


def test_which_recorded_states_each_mode_may_claim_from():
    from announcer.plan import Mode, State, claimable

    table = {state: [mode for mode in (Mode.DUE, Mode.MANUAL, Mode.FORCE) if claimable(mode, state)]
             for state in State}
    assert table == {
        # not in the ledger yet: any mode may take it
        State.PENDING: [Mode.DUE, Mode.MANUAL, Mode.FORCE], State.DUE: [Mode.DUE, Mode.MANUAL, Mode.FORCE],
        State.HELD: [Mode.DUE, Mode.MANUAL, Mode.FORCE], State.SKIPPED: [Mode.DUE, Mode.MANUAL, Mode.FORCE],
        State.TBA: [Mode.DUE, Mode.MANUAL, Mode.FORCE],
        State.MISSED: [Mode.DUE, Mode.MANUAL, Mode.FORCE], State.RETRY: [Mode.DUE, Mode.MANUAL, Mode.FORCE],
        State.FAILED: [Mode.MANUAL, Mode.FORCE],
        State.SENT: [Mode.FORCE], State.UNCERTAIN: [Mode.FORCE],
        State.CLAIMED: [],  # in flight: never twice at once
    }


def test_ready_at_is_when_a_pass_may_send_a_message():
    from announcer.plan import PlannedMessage, State, ready_at

    now = datetime(2027, 2, 21, 12, 0, tzinfo=timezone.utc)
    due = datetime(2027, 2, 21, 18, 0, tzinfo=timezone.utc)
    message = PlannedMessage("t", "reminder", "t.reminder", due, due, State.PENDING, 0, "<m@x>", None)
    retry = Record("t.reminder", "t", "reminder", due, "retry", datetime(2027, 2, 21, 12, 30, tzinfo=timezone.utc),
                   None)
    assert ready_at(message, None, now) == due
    assert ready_at(replace(message, state=State.DUE), None, now) == now
    assert ready_at(replace(message, state=State.HELD), None, now) is None
    assert ready_at(replace(message, state=State.HELD), None, now, catch_up=True) == now
    assert ready_at(replace(message, state=State.RETRY), retry, now) == retry.next_try
    assert ready_at(replace(message, state=State.RETRY), None, now) == now
    for state in (State.SENT, State.FAILED, State.UNCERTAIN, State.MISSED, State.SKIPPED, State.TBA):
        assert ready_at(replace(message, state=state), None, now) is None
