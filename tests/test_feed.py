"""`announcer calendar`: the series feed, its events checked against the invites the list got."""

import email
import email.policy
import mailbox
import textwrap
from datetime import timedelta, timezone

from icalendar import Calendar
from typer.testing import CliRunner

from announcer.cli import app
from announcer.sources.series import load_series

from conftest import write_config

runner = CliRunner()
TALKS = {
    "moved": "title: Mean-Field Limits\nspeaker: {name: Boris Hanin, affiliation: Princeton}\n"
             "start: 2027-04-08 15:30\nlocation: Eck 206\nonline_url: https://zoom.example/j/1\n"
             "links: {slides: 'https://example.org/slides.pdf'}\nurl: https://example.org/hanin\n",
    "dropped": "title: A Talk That Will Not Happen\nspeaker: Ahmed El Alaoui\nstart: 2027-04-09 14:00\n",
    "maybe": "title: Perhaps\nspeaker: Lenka Zdeborová\nstart: 2027-05-04 14:00\nstatus: tentative\n",
    "never": "title: Cancelled Before Anyone Heard\nspeaker: A. Nobody\nstart: 2027-05-11 14:00\nstatus: cancelled\n",
    "slot": "start: 2027-05-18 14:00\n",
    # 01:30 to 03:30 in Paris, across the night the clocks go forward (28 March 2027): 1 hour long.
    "paris": "title: Across the Change\nspeaker: Marc Mézard\nstart: 2027-03-28 01:30\nend: 2027-03-28 03:30\n"
             "timezone: Europe/Paris\n",
    "past": "title: Last Year\nspeaker: Someone Earlier\nstart: 2026-11-03 11:00\n",
}
ANNOUNCED = "2027-04-02T14:00:00Z"   # both announcements (due 1 and 2 April, 09:00) have gone out
CHANGED = "2027-04-03T12:00:00Z"     # the moved talk's update and the dropped talk's cancellation go out


class Series:
    def __init__(self, tmp_path):
        self.root = tmp_path
        self.config = write_config(tmp_path)
        for name, text in TALKS.items():
            self.write(name, text)

    def write(self, name, text):
        (self.root / "talks" / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")

    def run(self, *args):
        result = runner.invoke(app, ["--config", str(self.config), *map(str, args)])
        assert result.exit_code == 0, result.output
        return result

    def feed(self, now):
        return Calendar.from_ical(self.run("calendar", "--now", now).stdout_bytes)

    def sent_invites(self):
        """Each sent message's invite event, by (talk id, kind)."""
        found = {}
        for raw in mailbox.Maildir(self.root / "outbox", create=False):
            message = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
            part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
            event = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")[0]
            kind = message["Message-ID"].strip("<").split(".")[1]
            found[(str(event["UID"]).split("@")[0], kind)] = event
        return found


def events(calendar):
    return {str(event["UID"]).split("@")[0]: event for event in calendar.walk("VEVENT")}


def moved_and_sent(tmp_path):
    series = Series(tmp_path)
    series.run("send", "--due", "--now", ANNOUNCED)
    series.write("moved", TALKS["moved"].replace("15:30", "16:30").replace("Eck 206", "Eck 203"))
    series.write("dropped", TALKS["dropped"] + "status: cancelled\n")
    return series


def test_the_feed_is_one_calendar_with_every_talk_past_and_upcoming(tmp_path):
    series = Series(tmp_path)
    text = series.run("calendar", "--now", ANNOUNCED).stdout
    head = text.split("BEGIN:VEVENT")[0].splitlines()
    assert {"METHOD:PUBLISH", "X-WR-CALNAME:Test Seminar", "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
            "X-PUBLISHED-TTL:PT1H", "VERSION:2.0"} <= set(head)
    calendar = Calendar.from_ical(text.encode())
    assert calendar.refresh_interval == timedelta(hours=1)
    assert sorted(events(calendar)) == sorted(TALKS)
    starts = [event["DTSTART"].dt for event in calendar.walk("VEVENT")]
    assert starts == sorted(starts)


def test_every_event_is_the_invite_the_list_got_with_the_ledgers_sequence(tmp_path):
    series = moved_and_sent(tmp_path)
    # Moved, and the update not sent yet: the feed already carries the update's SEQUENCE.
    assert events(series.feed(CHANGED))["moved"]["SEQUENCE"] == 1
    series.run("send", "--due", "--now", CHANGED)
    sent = series.sent_invites()
    assert {("moved", "announcement"), ("moved", "update"), ("dropped", "announcement"),
            ("dropped", "cancellation")} <= set(sent)
    assert sent[("moved", "announcement")]["SEQUENCE"] == 0

    feed = events(series.feed(CHANGED))
    # The same VEVENT, byte for byte (DTSTAMP is the time of the send, which --now matches).
    assert feed["moved"].to_ical() == sent[("moved", "update")].to_ical()
    assert feed["moved"]["SEQUENCE"] == 1 and feed["moved"]["LOCATION"] == "Eck 203"
    assert feed["dropped"].to_ical() == sent[("dropped", "cancellation")].to_ical()
    assert feed["dropped"]["STATUS"] == "CANCELLED" and feed["dropped"]["SEQUENCE"] == 1

    # Later the feed still says the same (DTSTAMP aside).
    later = events(series.feed("2027-04-06T00:00:00Z"))
    assert later["moved"]["SEQUENCE"] == 1 and later["moved"]["DTSTAMP"].dt.day == 6


def test_talks_never_sent_carry_their_previewed_invites(tmp_path):
    series = moved_and_sent(tmp_path)
    feed = events(series.feed(ANNOUNCED))
    series.run("preview", "--out", tmp_path / "previews", "--now", ANNOUNCED)
    for talk_id in ("maybe", "slot", "never", "past", "paris"):
        series.run("preview", talk_id, "--kind", "announcement", "--out", tmp_path / "one", "--now", ANNOUNCED)
        message = email.message_from_bytes((tmp_path / "one" / f"{talk_id}.announcement.eml").read_bytes(),
                                           policy=email.policy.default)
        part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
        invite = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")[0]
        for name in ("UID", "SEQUENCE", "DTSTART", "DTEND", "SUMMARY", "LOCATION", "URL", "ORGANIZER"):
            assert feed[talk_id].get(name) == invite.get(name), (talk_id, name)
        if talk_id != "never":  # its announcement was never sent; the feed says it is cancelled
            assert feed[talk_id]["DESCRIPTION"] == invite["DESCRIPTION"]
    assert feed["maybe"]["STATUS"] == "TENTATIVE"
    assert feed["never"]["STATUS"] == "CANCELLED" and feed["never"]["DESCRIPTION"].startswith("CANCELLED\n")
    assert feed["slot"]["SUMMARY"] == "Test Seminar: TBA"
    assert feed["past"]["STATUS"] == "CONFIRMED"


def test_every_talks_instant_survives_the_round_trip(tmp_path):
    series = Series(tmp_path)
    feed = events(series.feed(ANNOUNCED))
    talks = load_series(str(series.config)).talks
    assert len(talks) == len(feed)
    for talk in talks:
        event = feed[talk.id]
        for name, moment in (("DTSTART", talk.start), ("DTEND", talk.end)):
            value = event[name].dt
            assert value.utcoffset() == timedelta(0) and value == moment, (talk.id, name)
    paris = feed["paris"]
    assert paris["DTSTART"].dt == paris["DTSTART"].dt.astimezone(timezone.utc)
    assert paris["DTEND"].dt - paris["DTSTART"].dt == timedelta(hours=1)  # the clocks went forward
    assert "DTSTART:20270328T003000Z" in series.run("calendar", "--now", ANNOUNCED).stdout


def test_out_writes_the_same_feed_in_one_step(tmp_path):
    series = Series(tmp_path)
    target = tmp_path / "public" / "series.ics"
    result = series.run("calendar", "--out", target, "--now", ANNOUNCED)
    assert result.stdout == f"wrote {target}\n"
    assert target.read_bytes() == series.run("calendar", "--now", ANNOUNCED).stdout_bytes
    target.write_text("old")
    series.run("calendar", "--out", target, "--now", ANNOUNCED)
    assert target.read_bytes().startswith(b"BEGIN:VCALENDAR")
    assert [p.name for p in target.parent.iterdir()] == ["series.ics"]  # no temporary file left


def test_bad_input_and_an_unwritable_place_are_one_line(tmp_path):
    series = Series(tmp_path)
    series.write("broken", "title: Broken\nstart: 14:00\n")
    result = runner.invoke(app, ["--config", str(series.config), "calendar"])
    assert result.exit_code == 1 and "broken.yaml:2:" in result.output and "Traceback" not in result.output
    (tmp_path / "talks" / "broken.yaml").unlink()
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["--config", str(series.config), "calendar", "--out", str(tmp_path / "file" / "x.ics")])
    assert result.exit_code == 1 and "cannot write" in result.output and len(result.output.splitlines()) == 1
