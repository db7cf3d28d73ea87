from datetime import datetime, time, timedelta, timezone

import pytest

from announcer.errors import AnnouncerError
from announcer.sources.timing import (
    due_time,
    format_duration,
    is_ambiguous,
    load_zone,
    localize,
    parse_duration,
    parse_now,
    parse_time_of_day,
)

NEW_YORK = load_zone("America/New_York")
ZURICH = load_zone("Europe/Zurich")


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("7d", 604800), ("2w", 1209600),
])
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "7", "1x", "h1", "1h 30", 90])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_time_of_day_must_be_quoted():
    assert parse_time_of_day("09:00") == time(9, 0)
    with pytest.raises(ValueError, match="quoted"):
        parse_time_of_day(540)
    with pytest.raises(ValueError):
        parse_time_of_day("25:00")


def test_spring_forward_gap_is_an_error():
    with pytest.raises(ValueError, match="does not exist in America/New_York"):
        localize(datetime(2027, 3, 14, 2, 30), NEW_YORK)


def test_autumn_fold_takes_first_occurrence():
    local = localize(datetime(2027, 11, 7, 1, 30), NEW_YORK)
    assert is_ambiguous(local)
    assert local.utcoffset() == timedelta(hours=-4)  # EDT: the first 1:30


def test_announcement_with_at_is_local_wall_clock_across_spring_change():
    # Talk on Tuesday 16 March 2027 (EDT); seven days before is Tuesday 9 March (EST).
    start = localize(datetime(2027, 3, 16, 14, 0), NEW_YORK)
    due = due_time(start, timedelta(days=7), time(9, 0), NEW_YORK)
    assert due == datetime(2027, 3, 9, 14, 0, tzinfo=timezone.utc)  # 09:00 EST
    assert due.astimezone(NEW_YORK).hour == 9


def test_announcement_with_at_across_autumn_change():
    # Talk on 9 November 2027 (EST); seven days before is 2 November (EDT).
    start = localize(datetime(2027, 11, 9, 10, 45), NEW_YORK)
    due = due_time(start, timedelta(days=7), time(9, 0), NEW_YORK)
    assert due == datetime(2027, 11, 2, 13, 0, tzinfo=timezone.utc)  # 09:00 EDT


def test_fixed_span_across_spring_change_is_exact():
    # A 1-day reminder for a talk on the Monday after the change is 24 real hours before it,
    # which is 15:00 on the Sunday by the (now EDT) wall clock, 14:00 of the old offset.
    start = localize(datetime(2027, 3, 15, 14, 0), NEW_YORK)
    due = due_time(start, timedelta(days=1), None, NEW_YORK)
    assert start.astimezone(timezone.utc) - due == timedelta(hours=24)
    assert due == datetime(2027, 3, 14, 18, 0, tzinfo=timezone.utc)


def test_fixed_span_across_autumn_change_is_exact():
    start = localize(datetime(2027, 11, 7, 3, 0), NEW_YORK)  # just after the fold, EST
    due = due_time(start, timedelta(hours=2), None, NEW_YORK)
    assert due == datetime(2027, 11, 7, 6, 0, tzinfo=timezone.utc)
    assert due.astimezone(NEW_YORK).strftime("%H:%M %Z") == "01:00 EST"


def test_zurich_talk_announced_by_new_york_series():
    # 14:00 in Zurich on 30 March 2027 (CEST, +2) is 08:00 in New York (EDT, -4).
    start = localize(datetime(2027, 3, 30, 14, 0), ZURICH)
    due = due_time(start, timedelta(days=7), time(9, 0), NEW_YORK)
    # seven days before the talk's New York date (30 March), at 09:00 New York time
    assert due == datetime(2027, 3, 23, 13, 0, tzinfo=timezone.utc)
    reminder = due_time(start, timedelta(hours=1), None, NEW_YORK)
    assert reminder == datetime(2027, 3, 30, 11, 0, tzinfo=timezone.utc)


def test_zurich_talk_in_the_three_weeks_between_the_two_changes():
    # New York has moved to EDT (14 March) but Zurich has not yet (28 March): 6 hours apart.
    start = localize(datetime(2027, 3, 22, 17, 0), ZURICH)
    assert start.astimezone(NEW_YORK).strftime("%H:%M") == "12:00"
    due = due_time(start, timedelta(days=1), time(9, 0), NEW_YORK)
    assert due.astimezone(NEW_YORK) == datetime(2027, 3, 21, 9, 0, tzinfo=NEW_YORK)


def test_at_inside_the_gap_moves_to_after_it():
    start = localize(datetime(2027, 3, 15, 14, 0), NEW_YORK)
    due = due_time(start, timedelta(days=1), time(2, 30), NEW_YORK)
    assert due.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M") == "2027-03-14 03:30"


def test_parse_now():
    assert parse_now("2027-02-14T09:00-05:00") == datetime(2027, 2, 14, 14, 0, tzinfo=timezone.utc)
    assert parse_now("2027-02-14T09:00") == datetime(2027, 2, 14, 9, 0, tzinfo=timezone.utc)
    with pytest.raises(AnnouncerError):
        parse_now("next tuesday")
