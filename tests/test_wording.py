"""Times and changes in words: dates, clocks and zones in the talk's own zone, whatever the locale."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from announcer.compose.wording import clock, describe_changes, long_date, short_date, span, when, when_short, zone_name
from announcer.plan import Change

from series_files import load_mad_talks

NEW_YORK = ZoneInfo("America/New_York")


def at(text: str, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@pytest.mark.parametrize("hour, minute, expected", [
    (0, 0, "12:00 am"), (0, 5, "12:05 am"), (9, 30, "9:30 am"), (11, 59, "11:59 am"),
    (12, 0, "12:00 pm"), (13, 5, "1:05 pm"), (23, 59, "11:59 pm"),
])
def test_clock_is_twelve_hour_with_am_and_pm(hour, minute, expected):
    assert clock(at(f"2027-02-21T{hour:02d}:{minute:02d}")) == expected


def test_dates_are_english_whatever_the_locale():
    moment = at("2027-09-07T14:00")
    assert long_date(moment) == "Tuesday 7 September 2027"
    assert short_date(moment) == "Tue 7 Sep"


@pytest.mark.parametrize("zone, expected", [
    ("America/New_York", "EST"), ("Europe/London", "GMT"), ("Asia/Kolkata", "IST"),
    ("Asia/Dubai", "UTC+04"), ("America/Sao_Paulo", "UTC-03"), ("UTC", "UTC"),
])
def test_zone_name_is_the_abbreviation_or_an_offset_from_utc(zone, expected):
    assert zone_name(at("2027-01-15T12:00", ZoneInfo(zone))) == expected


@pytest.mark.parametrize("start, end, expected", [
    ("2027-02-21T14:00", "2027-02-21T15:00", "Sunday 21 February 2027, 2:00-3:00 pm EST"),
    ("2027-02-21T09:00", "2027-02-21T10:30", "Sunday 21 February 2027, 9:00-10:30 am EST"),
    ("2027-02-21T11:30", "2027-02-21T12:30", "Sunday 21 February 2027, 11:30 am-12:30 pm EST"),
    ("2027-02-21T23:30", "2027-02-22T00:30",
     "Sunday 21 February 2027, 11:30 pm EST - Monday 22 February 2027, 12:30 am EST"),
    # across the spring-forward change: the zone is named at both ends
    ("2027-03-14T01:30", "2027-03-14T03:30", "Sunday 14 March 2027, 1:30 am EST - 3:30 am EDT"),
])
def test_span_spells_out_whatever_differs_at_the_end(start, end, expected):
    assert span(at(start), at(end)) == expected


def test_a_moved_start_and_end_read_as_one_time_change_and_other_fields_in_words(tmp_path):
    _, talks = load_mad_talks(tmp_path, "title: T\nspeaker: S\nstart: 2027-02-28 15:00\nlocation: Eck 203\n")
    talk = talks[0]
    changes = [Change("start", "2027-02-21T14:00:00-05:00", "2027-02-28T15:00:00-05:00"),
               Change("end", "2027-02-21T15:00:00-05:00", "2027-02-28T16:00:00-05:00"),
               Change("location", "Eck 206", "Eck 203"), Change("online_url", None, "https://z.example/j/1"),
               Change("status", "tentative", "confirmed")]
    views = [(v.field, v.label, v.short, v.old, v.new) for v in describe_changes(talk, changes)]
    assert views == [
        ("time", "Time changed", "new time", "Sunday 21 February 2027, 2:00-3:00 pm EST",
         "Sunday 28 February 2027, 3:00-4:00 pm EST"),
        ("location", "Room changed", "new room", "Eck 206", "Eck 203"),
        ("online_url", "Online link changed", "new online link", "none", "https://z.example/j/1"),
        ("status", "Status changed", "new status", "tentative", "confirmed"),
    ]


def test_when_is_weekday_date_times_and_zone(tmp_path):
    _, (talk,) = load_mad_talks(tmp_path, "title: T\nspeaker: S\nstart: 2027-02-21 14:00\n")
    assert when(talk) == "Sunday 21 February 2027, 2:00-3:00 pm EST"
    assert when_short(talk) == "Sun 21 Feb, 2:00 pm"


@pytest.mark.parametrize("start, extra, expected", [
    ("2027-03-15 11:30", "duration: 1h", "Monday 15 March 2027, 11:30 am-12:30 pm EDT"),
    ("2027-11-08 09:00", "duration: 90m", "Monday 8 November 2027, 9:00-10:30 am EST"),
    ("2027-03-30 17:15", "timezone: Europe/Zurich", "Tuesday 30 March 2027, 5:15-6:15 pm CEST"),
    ("2027-01-12 23:30", "duration: 1h", "Tuesday 12 January 2027, 11:30 pm EST - "
                                         "Wednesday 13 January 2027, 12:30 am EST"),
    ("2027-06-01 16:00", "timezone: Asia/Dubai", "Tuesday 1 June 2027, 4:00-5:00 pm UTC+04"),
])
def test_when_in_the_talks_own_zone(tmp_path, start, extra, expected):
    _, (talk,) = load_mad_talks(tmp_path, f"title: T\nspeaker: S\nstart: {start}\n{extra}\n")
    assert when(talk) == expected
