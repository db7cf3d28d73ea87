"""The ICS invite: golden files, a round trip through icalendar, UTC instants across DST."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from icalendar import Calendar

from announcer.compose.invite import build_invite, invite_texts
from announcer.sources.config import Config
from announcer.sources.talk import Talk

from golden_files import assert_golden
from series_files import load_mad_talks

NOW = datetime(2027, 2, 14, 14, 0, 5, tzinfo=timezone.utc)

TALKS = {
    "pennington": """\
        id: 2027-02-21-pennington
        title: Dynamical Isometry and a Mean Field Theory of Signal Propagation in Deep Neural Networks
        speaker: {name: Jeffrey Pennington, affiliation: Google}
        start: 2027-02-21 14:00
        notes: Reception will follow.
        abstract: |
          In recent years, many state-of-the-art models in deep learning have utilized
          increasingly deep architectures; see [the paper](https://arxiv.org/abs/1711.04735).
        links:
          video: https://www.youtube.com/watch?v=AQKgBk8HDI4
        """,
    "zdeborova": """\
        id: 2027-03-30-zdeborova
        title: "Statistical physics of learning: phase transitions, algorithms; and limits"
        speaker: {name: Lenka Zdeborová, affiliation: EPFL}
        start: 2027-03-30 17:15
        timezone: Europe/Zurich
        location: EPFL, Room CM 1 4, Lausanne
        online_url: https://epfl.zoom.example/j/42
        url: https://example.edu/mad/zdeborova
        """,
    "hanin": """\
        speaker: {name: Boris Hanin, affiliation: Princeton}
        duration: 1h
        talks:
          - {id: hanin-1, title: Neural Network for Mathematicians, start: 2027-04-05 15:00, location: Eck 206}
          - {id: hanin-4, title: Deep Learning in the Mean-Field Regime, start: 2027-04-08 15:30,
             location: Eck 203}
        """,
    "tba": """\
        id: 2027-02-28-el-alaoui
        speaker: {name: Ahmed El Alaoui, affiliation: Stanford}
        start: 2027-02-28 14:00
        """,
}


def load(tmp_path: Path, talk_yaml: str) -> tuple[Config, list[Talk]]:
    return load_mad_talks(tmp_path, talk_yaml)


CASES = [  # golden name, talk file, index in the file, method, sequence, DTSTART, DTEND (UTC)
    ("pennington.publish.ics", "pennington", 0, "PUBLISH", 0, (2027, 2, 21, 19, 0), (2027, 2, 21, 20, 0)),
    ("zdeborova.publish.ics", "zdeborova", 0, "PUBLISH", 0, (2027, 3, 30, 15, 15), (2027, 3, 30, 16, 15)),
    ("hanin-4.publish.ics", "hanin", 1, "PUBLISH", 1, (2027, 4, 8, 19, 30), (2027, 4, 8, 20, 30)),
    ("el-alaoui.cancel.ics", "tba", 0, "CANCEL", 1, (2027, 2, 28, 19, 0), (2027, 2, 28, 20, 0)),
]


@pytest.mark.parametrize("name, talks, index, method, sequence, start, end", CASES)
def test_invite_matches_golden_and_round_trips(tmp_path, name, talks, index, method, sequence, start, end):
    config, loaded = load(tmp_path, TALKS[talks])
    talk = loaded[index]
    data = build_invite(config, talk, method=method, sequence=sequence, now=NOW)
    assert_golden(name, data)

    calendar = Calendar.from_ical(data)
    assert (calendar["VERSION"], calendar["METHOD"]) == ("2.0", method)
    assert calendar["PRODID"].startswith("-//announcer//")
    assert [c.name for c in calendar.subcomponents] == ["VEVENT"]  # no VTIMEZONE, no VALARM
    [event] = calendar.walk("VEVENT")
    assert event["UID"] == f"{talk.id}@mad.example.edu"
    assert event["SEQUENCE"] == sequence
    assert event.decoded("DTSTAMP") == NOW
    assert event.decoded("DTSTART") == datetime(*start, tzinfo=timezone.utc)
    assert event.decoded("DTEND") == datetime(*end, tzinfo=timezone.utc)
    assert event.decoded("DTSTART").utcoffset().total_seconds() == 0
    assert event["ORGANIZER"] == "mailto:mad-organizers@example.edu"
    assert event["ORGANIZER"].params["CN"] == "MaD Seminar"
    assert event["STATUS"] == ("CANCELLED" if method == "CANCEL" else "CONFIRMED")
    assert "ATTENDEE" not in event and "TZID" not in data.decode()
    assert b"X-WR-" not in data and b"VALARM" not in data
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")


@pytest.mark.parametrize("start, zone, utc", [
    ("2027-03-13 14:00", "America/New_York", (2027, 3, 13, 19, 0)),   # the day before: EST
    ("2027-03-14 14:00", "America/New_York", (2027, 3, 14, 18, 0)),   # clocks went forward at 2:00
    ("2027-03-15 14:00", "America/New_York", (2027, 3, 15, 18, 0)),
    ("2027-07-14 14:00", "America/New_York", (2027, 7, 14, 18, 0)),   # the Thunderbird case
    ("2027-11-06 14:00", "America/New_York", (2027, 11, 6, 18, 0)),   # the day before: EDT
    ("2027-11-07 14:00", "America/New_York", (2027, 11, 7, 19, 0)),   # clocks went back at 2:00
    ("2027-11-08 14:00", "America/New_York", (2027, 11, 8, 19, 0)),
    ("2027-03-30 17:15", "Europe/Zurich", (2027, 3, 30, 15, 15)),     # CEST since 28 March
    ("2027-03-26 17:15", "Europe/Zurich", (2027, 3, 26, 16, 15)),     # still CET
])
def test_start_is_the_right_utc_instant_around_dst_changes(tmp_path, start, zone, utc):
    config, [talk] = load(tmp_path, f"title: T\nspeaker: S\nstart: {start}\ntimezone: {zone}\n")
    data = build_invite(config, talk, method="PUBLISH", sequence=0, now=NOW)
    [event] = Calendar.from_ical(data).walk("VEVENT")
    assert event.decoded("DTSTART") == datetime(*utc, tzinfo=timezone.utc)
    assert f"DTSTART:{datetime(*utc):%Y%m%dT%H%M%S}Z".encode() in data


def test_uid_is_the_same_for_every_method_and_title(tmp_path):
    config, [talk] = load(tmp_path, TALKS["pennington"])
    _, [retitled] = load(tmp_path, TALKS["pennington"].replace("Dynamical Isometry", "Free Probability"))
    assert retitled.title != talk.title
    uids = {Calendar.from_ical(build_invite(config, t, method=m, sequence=s, now=NOW)).walk("VEVENT")[0]["UID"]
            for t, m, s in [(talk, "PUBLISH", 0), (retitled, "PUBLISH", 1), (talk, "CANCEL", 2)]}
    assert uids == {"2027-02-21-pennington@mad.example.edu"}


def test_summary_description_and_location_keep_non_ascii_and_links(tmp_path):
    config, [talk] = load(tmp_path, TALKS["zdeborova"])
    [event] = Calendar.from_ical(build_invite(config, talk, method="PUBLISH", sequence=0, now=NOW)).walk("VEVENT")
    assert event["SUMMARY"] == ("Lenka Zdeborová: Statistical physics of learning: phase transitions, "
                                "algorithms; and limits")
    assert event["LOCATION"] == "EPFL, Room CM 1 4, Lausanne"
    assert event["URL"] == "https://example.edu/mad/zdeborova"
    description = event["DESCRIPTION"]
    assert description.startswith("Lenka Zdeborová (EPFL)\nStatistical physics of learning")
    assert "Tuesday 30 March 2027, 5:15-6:15 pm CEST" in description
    assert "Online: https://epfl.zoom.example/j/42" in description
    assert "MaD Seminar: https://example.edu/mad/" in description


@pytest.mark.parametrize("talk", TALKS)
@pytest.mark.parametrize("method", ["PUBLISH", "CANCEL"])
def test_every_text_of_the_invite_is_one_invite_texts_lists(tmp_path, talk, method):
    # message.size_bound counts invite_texts: a property written from elsewhere would escape it.
    config, talks = load(tmp_path, TALKS[talk])
    for one in talks:
        texts = invite_texts(config, one, method)
        [event] = Calendar.from_ical(build_invite(config, one, method=method, sequence=0, now=NOW)).walk("VEVENT")
        fixed = {"SEQUENCE", "DTSTAMP", "DTSTART", "DTEND", "STATUS"}
        written = {name.lower(): str(value) for name, value in event.property_items(recursive=False)
                   if name not in fixed | {"BEGIN", "END"}}
        assert written == {name: text for name, text in texts.items() if name != "cn"}
        assert event["ORGANIZER"].params["CN"] == texts["cn"]


@pytest.mark.parametrize("location, expected", [("online", "https://zoom.example/j/7"), ("null", "https://zoom.example/j/7"),
                                                ("Eck 203", "Eck 203")])
def test_the_location_of_an_online_only_talk_is_its_link(tmp_path, location, expected):
    config, [talk] = load(tmp_path, textwrap.dedent(TALKS["tba"]) + f"location: {location}\n"
                                                                     "online_url: https://zoom.example/j/7\n")
    [event] = Calendar.from_ical(build_invite(config, talk, method="PUBLISH", sequence=0, now=NOW)).walk("VEVENT")
    assert event["LOCATION"] == expected
    assert "Auditorium" not in event["DESCRIPTION"]


def test_the_description_holds_a_sessions_notes_and_the_courses(tmp_path):
    config, [talk] = load(tmp_path, "notes: Every day this week.\n"
                                    "talks: [{title: One, start: 2027-04-05 15:00, notes: In lieu of the seminar.}]\n")
    [event] = Calendar.from_ical(build_invite(config, talk, method="PUBLISH", sequence=0, now=NOW)).walk("VEVENT")
    assert "\nAuditorium Hall 150, Center for Data Science, NYU, 60 5th Ave\nIn lieu of the seminar.\nEvery day this week.\n" in event["DESCRIPTION"]


def test_tba_and_tentative_talks(tmp_path):
    config, [talk] = load(tmp_path, TALKS["tba"] + "status: tentative\n")
    [event] = Calendar.from_ical(build_invite(config, talk, method="PUBLISH", sequence=0, now=NOW)).walk("VEVENT")
    assert event["SUMMARY"] == "Ahmed El Alaoui: TBA"
    assert event["STATUS"] == "TENTATIVE"
    assert event["URL"] == "https://example.edu/mad/"  # the series page when the talk has none


def test_an_unknown_method_is_refused(tmp_path):
    config, [talk] = load(tmp_path, TALKS["tba"])
    with pytest.raises(ValueError, match="REQUEST"):
        build_invite(config, talk, method="REQUEST", sequence=0, now=NOW)
