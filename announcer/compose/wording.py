"""Times and changes in words, in the talk's own zone: "Tuesday 21 February 2027, 2:00-3:00 pm EST"."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from announcer.plan import Change
from announcer.sources.talk import Talk

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_CHANGE_WORDING = {  # field -> (label in the text, short form for the subject)
    "location": ("Room changed", "new room"),
    "online_url": ("Online link changed", "new online link"),
    "status": ("Status changed", "new status"),
}


@dataclass(frozen=True)
class ChangeView:
    """One change of a talk, worded for people: "Room changed: Eck 206 → Eck 203"."""

    field: str
    label: str
    short: str
    old: str
    new: str


def long_date(moment: datetime) -> str:
    """"Tuesday 21 February 2027" (English whatever the locale)."""
    return f"{WEEKDAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def short_date(moment: datetime) -> str:
    """"Tue 21 Feb"."""
    return f"{WEEKDAYS[moment.weekday()][:3]} {moment.day} {MONTHS[moment.month - 1][:3]}"


def clock(moment: datetime) -> str:
    """"2:00 pm"."""
    return f"{moment.hour % 12 or 12}:{moment.minute:02d} {'am' if moment.hour < 12 else 'pm'}"


def zone_name(moment: datetime) -> str:
    """The zone's abbreviation at that moment ("EST", "CET"), or "UTC+04" where it has none."""
    name = moment.tzname() or ""
    return f"UTC{name}" if name[:1] in "+-" else name


def span(start: datetime, end: datetime) -> str:
    """"Tuesday 21 February 2027, 2:00-3:00 pm EST", spelling out whatever differs at the end."""
    if start.date() != end.date():
        return f"{long_date(start)}, {clock(start)} {zone_name(start)} - {long_date(end)}, {clock(end)} {zone_name(end)}"
    if zone_name(start) != zone_name(end):  # a talk across a clock change
        return f"{long_date(start)}, {clock(start)} {zone_name(start)} - {clock(end)} {zone_name(end)}"
    if (start.hour < 12) == (end.hour < 12):
        return f"{long_date(start)}, {clock(start)[:-3]}-{clock(end)} {zone_name(end)}"
    return f"{long_date(start)}, {clock(start)}-{clock(end)} {zone_name(end)}"


def dates(talk: Talk, short: bool = False) -> str:
    """The days a talk (a course) spans, in its zone: "Monday 5 - Friday 9 April 2027", or
    short "Mon 5 - Fri 9 Apr"; one day's date alone."""
    start, end = talk.start.astimezone(talk.timezone), talk.end.astimezone(talk.timezone)
    first, last = (short_date(start), short_date(end)) if short else (long_date(start), long_date(end))
    if start.date() == end.date():
        return first
    if short:  # "Mon 5 Apr": drop the month when it is the same
        return f"{first.rsplit(' ', 1)[0] if start.month == end.month else first} - {last}"
    if start.year == end.year:  # "Monday 5 April 2027": drop the year, and the month when it is the same
        first = first.rsplit(" ", 2 if start.month == end.month else 1)[0]
    return f"{first} - {last}"


def when(talk: Talk) -> str:
    """The talk's date, times and zone, in its own zone."""
    return span(talk.start.astimezone(talk.timezone), talk.end.astimezone(talk.timezone))


def when_short(talk: Talk) -> str:
    """"Tue 21 Feb, 2:00 pm", for subjects."""
    start = talk.start.astimezone(talk.timezone)
    return f"{short_date(start)}, {clock(start)}"


@lru_cache(maxsize=4096)  # a talk's every message asks twice (text and HTML)
def elsewhere(moment: datetime, zones: tuple[ZoneInfo, ...]) -> str:
    """The same instant in other zones: "19:00 GMT · 00:30 IST, Mon 22 Feb" ("" for none).

    24-hour clocks (read the world over); a zone's date is named where it is not the day of
    `moment` in its own zone (a late-evening New York talk is the next morning in Kolkata).
    """
    day = moment.date()
    parts = []
    for zone in zones:
        there = moment.astimezone(zone)
        text = f"{there:%H:%M} {zone_name(there)}"
        parts.append(text if there.date() == day else f"{text}, {short_date(there)}")
    return " · ".join(parts)


def _instant(value: str | None, fallback: datetime, talk: Talk) -> datetime:
    try:
        return datetime.fromisoformat(value).astimezone(talk.timezone) if value else fallback
    except ValueError:
        return fallback


def describe_changes(talk: Talk, changes: Iterable[Change]) -> list[ChangeView]:
    """The plan's changes worded for people, a moved start and end as one "Time changed"."""
    changes = list(changes)
    by_field = {c.field: c for c in changes}
    views: list[ChangeView] = []
    if "start" in by_field or "end" in by_field:
        start, end = talk.start.astimezone(talk.timezone), talk.end.astimezone(talk.timezone)
        old_start = _instant(getattr(by_field.get("start"), "old", None), start, talk)
        old_end = _instant(getattr(by_field.get("end"), "old", None), end, talk)
        views.append(ChangeView("time", "Time changed", "new time", span(old_start, old_end), when(talk)))
    for change in changes:
        if change.field in ("start", "end"):
            continue
        words = change.field.replace("_", " ")
        label, short = _CHANGE_WORDING.get(change.field, (f"{words.capitalize()} changed", f"new {words}"))
        new = change.new or ("online" if change.field == "location" and talk.online_only else "none")
        views.append(ChangeView(change.field, label, short, change.old or "none", new))
    return views
