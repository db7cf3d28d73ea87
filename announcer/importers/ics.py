"""ICS calendars -> talks (SPEC 8.1): each VEVENT a talk, recurring ones expanded, instants exact.

icalendar parses, recurring-ical-events expands RRULE/RDATE/EXDATE and overridden occurrences.
Neither keeps line numbers, so a small scan of the text finds where each property begins, for
the report of what was not imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from announcer.errors import InputError, Problem
from announcer.importers.common import (
    ImportedTalk,
    SourceResult,
    clean_text,
    http_link,
    one_line,
    speaker_value,
    split_affiliation,
)
from announcer.sources.timing import localize

HORIZON = timedelta(days=365)  # recurring events are expanded up to a year after the import
_CONTENT_LINE = re.compile(r"[A-Za-z0-9-]+(;[^:]*)?:")
# Properties that become part of the talk, and the calendar's own bookkeeping (its stamps,
# revision and recurrence rules, which announcer keeps for itself): neither is reported.
USED = {"UID", "DTSTART", "DTEND", "DURATION", "SUMMARY", "DESCRIPTION", "LOCATION", "URL", "STATUS"}
BOOKKEEPING = {"DTSTAMP", "CREATED", "LAST-MODIFIED", "SEQUENCE", "RRULE", "RDATE", "EXDATE",
               "RECURRENCE-ID", "PRODID", "VERSION", "CALSCALE", "METHOD", "X-WR-TIMEZONE",
               "REFRESH-INTERVAL", "X-PUBLISHED-TTL"}
_STATUS = {"CANCELLED": "cancelled", "TENTATIVE": "tentative", "CONFIRMED": "confirmed"}
# `Series: Speaker, Affiliation – “Title”` (seed 002); the series part is optional.
_SUMMARY = re.compile(r"(?:(?P<series>[^:,“”\"]+):\s*)?(?P<who>[^“”\"]+?)\s+[–—-]\s+[“\"](?P<title>.+)[”\"]\s*")
# Labels that a DESCRIPTION may run together ("LocationHackerman Hall B-17AbstractWhile ...").
LABELS = {"Location": "location", "Where": "location", "Venue": "location", "Room": "location",
          "Abstract": "abstract", "Bio": "bio", "Biography": "bio", "Speaker": "speaker",
          "Affiliation": "affiliation", "Title": "title", "Video": "video", "Slides": "slides"}
_LABEL = re.compile(r"(?:^|(?<=\S))(?P<label>" + "|".join(sorted(LABELS, key=len, reverse=True))
                    + r")(?::\s*|(?=[A-Z0-9\n]))", re.MULTILINE)


@dataclass
class _Block:
    """One component as written: where it begins and where each of its properties does."""

    name: str
    line: int
    properties: dict[str, int] = field(default_factory=dict)
    uid: str | None = None
    inner: list[tuple[str, int]] = field(default_factory=list)  # nested components (VALARM ...)


def _content_lines(text: str, where: str) -> list[tuple[str, int]]:
    """Unfolded content lines, each with the physical line it begins on; garbage is an error."""
    lines: list[tuple[str, int]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = (lines[-1][0] + raw[1:], lines[-1][1])
        elif raw.strip():
            lines.append((raw, number))
    for line, number in lines:
        if not _CONTENT_LINE.match(line):
            raise InputError([Problem(where, number, f"not an iCalendar line: {line[:40]!r}")])
    return lines


def _scan(lines: list[tuple[str, int]], where: str) -> tuple[list[_Block], dict[str, int]]:
    """The VEVENT blocks and the calendar's own properties (name -> line), nesting checked."""
    stack: list[_Block] = []
    events: list[_Block] = []
    calendar: dict[str, int] = {}
    others: list[_Block] = []
    for line, number in lines:
        name = re.split(r"[;:]", line, maxsplit=1)[0].upper()
        value = line.split(":", 1)[1].strip()
        if name == "BEGIN":
            stack.append(_Block(value.upper(), number))
        elif name == "END":
            if not stack or stack[-1].name != value.upper():
                raise InputError([Problem(where, number, f"END:{value} without its BEGIN")])
            block = stack.pop()
            if block.name == "VEVENT":
                events.append(block)
            elif stack and stack[-1].name == "VEVENT":
                stack[-1].inner.append((block.name, block.line))
            elif stack and stack[-1].name == "VCALENDAR" and block.name != "VTIMEZONE":
                others.append(block)
        elif stack:
            stack[-1].properties.setdefault(name, number)
            if name == "UID" and stack[-1].uid is None:
                stack[-1].uid = value
            if len(stack) == 1:
                calendar.setdefault(name, number)
    if stack:
        raise InputError([Problem(where, stack[-1].line, f"BEGIN:{stack[-1].name} is never ended")])
    for block in others:
        calendar.setdefault(block.name, block.line)
    return events, calendar


def _report_unused(result: SourceResult, where: str, events: list[_Block], calendar: dict[str, int]) -> None:
    for name, line in calendar.items():
        if name not in BOOKKEEPING | {"BEGIN", "END"}:
            result.note(where, line, f"{name} not imported")
    for block in events:
        for name, line in block.properties.items():
            if name not in USED | BOOKKEEPING:
                result.note(where, line, f"{name} not imported")
        for name, line in block.inner:
            result.note(where, line, f"{name} not imported")


def read_calendar(text: str, where: str, zone: ZoneInfo, now: datetime) -> SourceResult:
    """Every VEVENT of an ICS text as a talk, with notes on what had no place in a talk."""
    import icalendar
    import recurring_ical_events

    lines = _content_lines(text, where)
    if not lines or lines[0][0].upper() != "BEGIN:VCALENDAR":
        raise InputError([Problem(where, lines[0][1] if lines else 1, "not an iCalendar file (no BEGIN:VCALENDAR)")])
    events, calendar_properties = _scan(lines, where)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as error:
        raise InputError([Problem(where, None, f"not a valid calendar: {error}")]) from None
    recurring = set()
    result = SourceResult()
    for component, block in zip(calendar.walk("VEVENT"), events):
        _check_times(component, block, where)
        if "UID" not in component:  # required by RFC 5545; its place in the source stands in for it
            block.uid = f"{where}#{block.line}"
            component.add("UID", block.uid)
        start = component["DTSTART"]
        if isinstance(start.dt, datetime) and start.dt.tzinfo is None and "TZID" in start.params:
            result.note(where, block.properties["DTSTART"], f"TZID {start.params['TZID']!r} has no VTIMEZONE: "
                                                            f"read in {zone.key}")
        if any(name in component for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
            recurring.add(str(component.get("UID")))
    _report_unused(result, where, events, calendar_properties)
    blocks: dict[str | None, _Block] = {}
    for block in events:
        blocks.setdefault(block.uid, block)
    horizon = now + HORIZON
    try:
        occurrences = list(recurring_ical_events.of(calendar).between(datetime(1900, 1, 1), horizon))
    except Exception as error:  # the library's own errors for a rule it cannot expand
        raise InputError([Problem(where, None, f"cannot expand the recurring events: {error}")]) from None
    seen = {(str(o.get("UID")), _rid(o)) for o in occurrences}
    for component in calendar.walk("VEVENT"):  # a one-off event beyond the horizon still counts
        uid = str(component.get("UID"))
        if uid not in recurring and (uid, _rid(component)) not in seen:
            occurrences.append(component)
    for occurrence in occurrences:
        uid = str(occurrence.get("UID", ""))
        block = blocks.get(uid) or events[0]
        talk = _talk(occurrence, block, where, zone, result)
        if talk is not None:
            talk_uid = f"{uid}/{_rid(occurrence)}" if uid in recurring else uid
            result.talks.append(ImportedTalk(talk, talk_uid, f"{where}:{block.line}"))
    return result


def _rid(component: Any) -> str:
    """An occurrence's RECURRENCE-ID (or DTSTART) as compact text: its part of a source_uid."""
    moment = (component.get("RECURRENCE-ID") or component.get("DTSTART")).dt
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return moment.strftime("%Y%m%dT%H%M%S" if isinstance(moment, datetime) else "%Y%m%d")


def _check_times(component: Any, block: _Block, where: str) -> None:
    for name in ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID"):
        if name in component:
            try:
                component[name].dt
            except Exception as error:
                raise InputError([Problem(where, block.properties.get(name, block.line),
                                          f"{name} is not a valid date or time: {error}")]) from None
    if "DTSTART" not in component:
        raise InputError([Problem(where, block.line, "VEVENT without DTSTART")])


def _instant(value: Any, zone: ZoneInfo, where: str, line: int) -> datetime:
    """An aware moment: a zoned or UTC time as it is, a floating one read in the series' zone."""
    if value.tzinfo is not None:
        return value.astimezone(zone)
    try:
        return localize(value, zone)
    except ValueError as error:
        raise InputError([Problem(where, line, f"floating time in {zone.key}: {error}")]) from None


def _talk(event: Any, block: _Block, where: str, zone: ZoneInfo, result: SourceResult) -> dict | None:
    start_value = event.get("DTSTART").dt
    if not isinstance(start_value, datetime):
        result.note(where, block.properties.get("DTSTART", block.line),
                    f"all-day event {one_line(event.get('SUMMARY', ''))!r} has no time: not imported")
        return None
    start = _instant(start_value, zone, where, block.properties.get("DTSTART", block.line))
    data: dict[str, Any] = {}
    parts = _split_summary(str(event.get("SUMMARY", "")), block, where, result)
    parts.update(_split_description(str(event.get("DESCRIPTION", "")), block, where, result, parts))
    if "LOCATION" in event:
        location = str(event.get("LOCATION"))
        described = parts.get("location")
        if described and one_line(described) != one_line(location):
            result.note(where, block.properties.get("DESCRIPTION"), f"DESCRIPTION's location not imported "
                                                                   f"(LOCATION gives the room): {described[:60]!r}")
        if http_link(location):
            parts["online_url"] = location.strip()
            parts.setdefault("location", "online")
        elif one_line(location):
            parts["location"] = location
    if parts.get("title"):
        data["title"] = one_line(parts["title"])
    if parts.get("speaker"):
        data["speaker"] = speaker_value(parts["speaker"], parts.get("affiliation"), parts.get("bio"))
    elif parts.get("bio"):
        parts["abstract"] = "\n\n".join(p for p in (parts.get("abstract"), parts["bio"]) if p)
    data["start"] = start
    end_value = event.get("DTEND").dt if "DTEND" in event else None
    if end_value is None and "DURATION" in event:
        end_value = start + event.get("DURATION").dt
    if isinstance(end_value, datetime):
        end = _instant(end_value, zone, where, block.properties.get("DTEND", block.line))
        if end > start:
            data["end"] = end
    if parts.get("location"):
        data["location"] = one_line(parts["location"])
    if parts.get("online_url"):
        data["online_url"] = parts["online_url"]
    url = http_link(event.get("URL", ""))
    if url:
        data["url"] = url
    links = {name: parts[name] for name in ("slides", "video") if parts.get(name)}
    if links:
        data["links"] = links
    status = _STATUS.get(str(event.get("STATUS", "")).upper())
    if status and status != "confirmed":
        data["status"] = status
    if parts.get("abstract"):
        data["abstract"] = clean_text(parts["abstract"])
    return data


def _split_summary(summary: str, block: _Block, where: str, result: SourceResult) -> dict[str, str]:
    """`Series: Speaker, Affiliation – “Title”` -> speaker, affiliation, title; else the title."""
    match = _SUMMARY.fullmatch(one_line(summary))
    if not match:
        return {"title": summary} if one_line(summary) else {}
    who = match["who"]
    if "," in who:
        name, affiliation = (part.strip() for part in who.split(",", 1))
    else:
        name, affiliation = split_affiliation(who)
    if match["series"]:
        result.note(where, block.properties.get("SUMMARY"),
                    f"SUMMARY's series name {match['series'].strip()!r} not imported")
    return {"speaker": name, "affiliation": affiliation or "", "title": match["title"]}


def _split_description(text: str, block: _Block, where: str, result: SourceResult,
                       known: dict[str, str]) -> dict[str, str]:
    """A DESCRIPTION split at its labels; text before any label, or that cannot be split, is the abstract."""
    text = clean_text(text)
    if not text:
        return {}
    marks = list(_LABEL.finditer(text))
    if not marks or marks[0].start() != 0:
        marks = []
    parts: dict[str, str] = {}
    if not marks:
        return {"abstract": text}
    line = block.properties.get("DESCRIPTION", block.line)
    for mark, after in zip(marks, marks[1:] + [None]):
        value = text[mark.end(): after.start() if after else len(text)].strip()
        key = LABELS[mark["label"]]
        if not value:
            continue
        if key in ("video", "slides"):
            url = http_link(value) or next(iter(re.findall(r"https?://\S+", value)), None)
            if url:
                parts[key] = url
            else:
                result.note(where, line, f"DESCRIPTION's {mark['label']} part not imported "
                                         f"(no link in it): {value[:60]!r}")
        elif key in parts or (key in known and known[key] and key != "abstract"):
            if one_line(value) != one_line(parts.get(key) or known.get(key) or ""):
                result.note(where, line, f"DESCRIPTION's {mark['label']} part not imported "
                                         f"(the {key} is already given): {value[:60]!r}")
        else:
            parts[key] = value
    return parts
