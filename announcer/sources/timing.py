"""Durations, local times, daylight-saving rules and due times."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from announcer.errors import AnnouncerError
from announcer.sources.values import shown

_DURATION = re.compile(r"(\d+)\s*([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_TIME_OF_DAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
MAX_DURATION = timedelta(weeks=520)  # ten years: longer is a typo, and would overflow the dates it moves


def parse_duration(text: str) -> timedelta:
    """Parse `90s`, `30m`, `1h30m`, `7d`, `2w` into a timedelta (ValueError if malformed)."""
    if not isinstance(text, str):
        raise ValueError(f"a duration is a quoted string like \"1h30m\", not {shown(text)}")
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION.sub("", compact) or len(compact) > 40:
        raise ValueError(f"{shown(text)} is not a duration: write e.g. \"90s\", \"30m\", \"1h30m\", \"7d\", \"2w\"")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(compact))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{shown(text)} is longer than ten years")
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    """The shortest `1h30m`-style spelling of a timedelta."""
    seconds = int(span.total_seconds())
    parts = []
    for unit in "dhms":
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_time_of_day(text: str) -> time:
    """Parse a quoted `HH:MM` (ValueError explains an unquoted YAML/TOML number)."""
    if not isinstance(text, str) or not _TIME_OF_DAY.fullmatch(text.strip()):
        raise ValueError(f"{text if isinstance(text, time) else shown(text)} is not a time of day: "
                         'write it quoted, as "09:00"')
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone of that name (ValueError if unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):  # OSError: a name too long for a file
        raise ValueError(f"unknown timezone {shown(name)}: use an IANA name such as \"America/New_York\"") from None


def is_ambiguous(local: datetime) -> bool:
    """True when a wall-clock time happens twice in its zone (the autumn fold)."""
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


def localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """Attach a zone to a wall-clock time; a time in the spring-forward gap is a ValueError.

    An ambiguous time (the autumn fold) takes its first occurrence (fold=0).
    """
    local = naive.replace(tzinfo=zone, fold=0)
    round_trip = local.astimezone(timezone.utc).astimezone(zone)
    if round_trip.replace(tzinfo=None) != naive:
        raise ValueError(
            f"{naive:%Y-%m-%d %H:%M} does not exist in {zone.key} "
            "(the clocks skip it when daylight saving starts)"
        )
    return local


def due_time(start: datetime, before: timedelta, at: time | None, zone: ZoneInfo) -> datetime:
    """When a message is due, in UTC.

    With `at`: that wall-clock time in the series zone, `before` in whole calendar days before
    the talk's date there. Without: exactly `before` before the start (a fixed span, DST-proof
    because the arithmetic is done in UTC).
    """
    start_utc = start.astimezone(timezone.utc)
    if at is None:
        return start_utc - before
    day: date = start.astimezone(zone).date() - timedelta(days=before.days)
    wall = datetime.combine(day, at)
    try:
        local = localize(wall, zone)
    except ValueError:
        # `at` falls in the spring-forward gap that day. Read with the offset in force before the
        # change (fold=0), the wall time lands as far after the gap as it was into it (02:30 -> 03:30).
        local = wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc).astimezone(zone)
    return local.astimezone(timezone.utc)


def parse_now(text: str | None) -> datetime:
    """The `--now` option: an ISO 8601 time (naive means UTC), or the real clock."""
    if text is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AnnouncerError(f"--now {text!r} is not an ISO 8601 time such as 2027-02-14T09:00-05:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
