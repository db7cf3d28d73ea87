"""A talk that moves: updates, cancellations and SEQUENCE, end to end through the ledger."""

import email
import email.policy
import mailbox

import pytest
from icalendar import Calendar
from typer.testing import CliRunner

from announcer.cli import app

from conftest import write_config

runner = CliRunner()
TALK = """\
title: Lecture 4, Deep Learning in the Mean-Field Regime
speaker: {{name: Boris Hanin, affiliation: Princeton}}
start: {start}
location: {room}
abstract: {abstract}
status: {status}
"""
ANNOUNCED = "2027-04-01T14:00:00Z"   # the announcement (due 1 April 09:00 EDT) has gone out


class Series:
    """A series folder whose one talk the test edits, delivering to Maildir or a real SMTP server."""

    def __init__(self, tmp_path, server=None):
        self.root, self.server = tmp_path, server
        self.config = write_config(tmp_path, server)
        self.edit()

    def edit(self, start="2027-04-08 15:30", room="Eck 206", abstract="Mean-field limits.", status="confirmed"):
        (self.root / "talks" / "hanin-4.yaml").write_text(
            TALK.format(start=start, room=room, abstract=abstract, status=status))

    def send_due(self, now):
        result = runner.invoke(app, ["--config", str(self.config), "send", "--due", "--now", now])
        assert result.exit_code == 0, result.output
        return result

    def messages(self):
        if self.server is not None:
            return [received.message() for received in self.server.messages]
        box = mailbox.Maildir(self.root / "outbox", create=False)
        parsed = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in box]
        return sorted(parsed, key=lambda m: m["Date"].datetime)


def invite(message):
    """The calendar part of a message, parsed, after checking the attachment carries the same."""
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    inline, attached = (p.get_payload(decode=True).replace(b"\r\n", b"\n") for p in parts)
    assert len(parts) == 2 and inline == attached  # (a text part decodes to native line ends)
    calendar = Calendar.from_ical(parts[0].get_payload(decode=True))
    assert parts[0].get_param("method") == str(calendar["METHOD"])
    return calendar, calendar.walk("VEVENT")[0]


@pytest.fixture(params=["maildir", "smtp"])
def series(request, tmp_path):
    if request.param == "maildir":
        return Series(tmp_path)
    return Series(tmp_path, request.getfixturevalue("smtp_plain"))


def test_a_moving_talk_is_followed_to_its_cancellation(series):
    series.send_due(ANNOUNCED)
    [announcement] = series.messages()
    _, event = invite(announcement)
    uid = str(event["UID"])
    assert int(event["SEQUENCE"]) == 0

    series.edit(start="2027-04-08 16:00", room="Eck 203")
    series.send_due("2027-04-02T12:00:00Z")
    update = series.messages()[-1]
    assert len(series.messages()) == 2
    assert "Eck 206" in update.get_body(("plain",)).get_content() and "Eck 203" in update["Subject"] + \
        update.get_body(("plain",)).get_content()
    assert update["In-Reply-To"] == announcement["Message-ID"]
    calendar, event = invite(update)
    assert str(calendar["METHOD"]) == "PUBLISH" and str(event["UID"]) == uid and int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART").isoformat() == "2027-04-08T20:00:00+00:00"
    assert str(event["LOCATION"]) == "Eck 203"

    series.send_due("2027-04-02T12:05:00Z")
    assert len(series.messages()) == 2  # nothing more: the update went out once

    series.edit(start="2027-04-08 16:30", room="Eck 203")
    series.send_due("2027-04-03T12:00:00Z")
    _, event = invite(series.messages()[-1])
    assert int(event["SEQUENCE"]) == 2 and str(event["UID"]) == uid

    series.edit(start="2027-04-08 16:30", room="Eck 203", status="cancelled")
    series.send_due("2027-04-04T12:00:00Z")
    cancellation = series.messages()[-1]
    assert "CANCELLED" in cancellation["Subject"]
    calendar, event = invite(cancellation)
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 3 and str(event["UID"]) == uid

    series.send_due("2027-04-08T20:00:00Z")  # the reminder's time: nothing for a cancelled talk
    assert len(series.messages()) == 4
    plan = runner.invoke(app, ["--config", str(series.config), "plan", "--all", "--now", "2027-04-08T20:00:00Z"])
    assert "reminder      skipped" in plan.stdout


def test_reminders_follow_the_new_time(tmp_path):
    series = Series(tmp_path)
    series.send_due(ANNOUNCED)
    series.send_due("2027-04-08T18:35:00Z")  # the reminder for 15:30 EDT (due 18:30Z)
    assert len(series.messages()) == 2
    series.edit(start="2027-04-09 15:30")
    series.send_due("2027-04-08T18:40:00Z")  # the update goes out; no reminder yet for the new day
    assert [m["Subject"].split(":")[0] for m in series.messages()][-1].lower().startswith(("update", "changed", "new"))
    series.send_due("2027-04-09T18:30:00Z")  # reminded again, for the new time
    reminder = series.messages()[-1]
    assert reminder["In-Reply-To"] and "Fri" in reminder["Subject"]
    assert len(series.messages()) == 4


def test_change_before_the_announcement_sends_only_the_announcement(tmp_path):
    series = Series(tmp_path)
    series.edit(room="Eck 203")
    series.send_due(ANNOUNCED)
    [only] = series.messages()
    _, event = invite(only)
    assert str(event["LOCATION"]) == "Eck 203" and int(event["SEQUENCE"]) == 0


def test_abstract_typo_sends_nothing(tmp_path):
    series = Series(tmp_path)
    series.send_due(ANNOUNCED)
    series.edit(abstract="Mean-field limits, corrected.")
    result = series.send_due("2027-04-02T12:00:00Z")
    assert len(series.messages()) == 1
    assert result.stdout.splitlines()[-1] == "0 sent, 0 retry, 0 failed, 0 uncertain"


def test_deleted_talk_sends_nothing_and_is_warned_about(tmp_path):
    series = Series(tmp_path)
    series.send_due(ANNOUNCED)
    (tmp_path / "talks" / "hanin-4.yaml").unlink()
    result = series.send_due("2027-04-08T18:35:00Z")
    assert len(series.messages()) == 1
    assert 'talk "hanin-4" was announced but is no longer in' in result.stdout
    check = runner.invoke(app, ["--config", str(series.config), "check", "--now", "2027-04-08T18:35:00Z"])
    assert 'warning: talk "hanin-4" was announced but is no longer in' in check.stderr
    plan = runner.invoke(app, ["--config", str(series.config), "plan", "--now", "2027-04-08T18:35:00Z"])
    assert "was announced but is no longer in" in plan.stderr


def test_preview_shows_a_planned_update_before_it_goes_out(tmp_path):
    series = Series(tmp_path)
    series.send_due(ANNOUNCED)
    series.edit(room="Eck 203")
    result = runner.invoke(app, ["--config", str(series.config), "preview", "hanin-4", "--kind", "update",
                                 "--now", "2027-04-02T12:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "Eck 206" in result.stdout and "Eck 203" in result.stdout
    assert len(series.messages()) == 1
    plan = runner.invoke(app, ["--config", str(series.config), "plan", "--now", "2027-04-02T12:00:00Z"])
    assert any(line.split()[-2:] == ["update", "due"] for line in plan.stdout.splitlines())
