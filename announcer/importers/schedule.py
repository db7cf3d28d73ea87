"""A page's schedule table -> one talk a row (SPEC 8.1, seed 000).

`| Date | Speaker | Title |` rows; a speaker written `Name (Affiliation)` and linked to their
page; a title linked to an anchor further down the page, where its abstract is. A date without a
year is the first such date on or after the page's own date. The page's `**Time:**` and
`**Room:**` lines give every row its time and room.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from announcer.errors import InputError, Problem
from announcer.importers.common import (
    ImportedTalk,
    SourceResult,
    clean_text,
    http_link,
    one_line,
    shorten,
    speaker_value,
    split_affiliation,
)
from announcer.importers.page import Page
from announcer.sources.timing import localize

COLUMNS = {"date": "date", "day": "date", "speaker": "speaker", "speakers": "speaker", "who": "speaker",
           "title": "title", "talk": "title", "affiliation": "affiliation", "institution": "affiliation",
           "room": "location", "location": "location", "venue": "location", "where": "location",
           "time": "time", "abstract": "abstract"}
EMPTY = {"", "tba", "tbd", "tbc", "-", "–", "—", "?"}
MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_ROW = re.compile(r"\s*\|.*")
_SEPARATOR = re.compile(r"\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*")
_LABEL = re.compile(r"\s*(?:\*\*|__)?(?P<label>Room|Location|Venue|Where|Time|When)\s*:\s*(?:\*\*|__)?\s*:?\s*(?P<value>.*)",
                    re.IGNORECASE)
_TIME = re.compile(r"(?P<h1>\d{1,2})(?::(?P<m1>\d{2}))?\s*(?P<p1>[ap])?\.?m?\.?\s*(?:(?:-|–|—|to)\s*"
                   r"(?P<h2>\d{1,2})(?::(?P<m2>\d{2}))?\s*(?P<p2>[ap])?\.?m?\.?)?\s*[,;.]?\s*(?P<rest>.*)",
                   re.IGNORECASE)
_ANCHOR = re.compile(r"<a\s+(?:name|id)\s*=\s*[\"']([^\"']+)[\"']|\{#([^}\s]+)\}")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_MONTH_DAY = re.compile(r"([A-Za-z]{3,})\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?")
_DAY_MONTH = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,})\.?(?:,?\s+(\d{4}))?")


@dataclass
class Cell:
    """A table cell: its text without Markdown links, and the first link's address."""

    text: str
    link: str | None

    @classmethod
    def parse(cls, raw: str) -> Cell:
        links = _LINK.findall(raw)
        text = _LINK.sub(lambda m: m[1], raw).replace("**", "").replace("__", "")
        text = re.sub(r"<[^>]+>", " ", text)
        return cls(one_line(text), links[0][1] if links else None)

    @property
    def empty(self) -> bool:
        return self.text.lower() in EMPTY


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", inner)]


def find_table(body: str) -> tuple[int, list[str]] | None:
    """The schedule table of a page body: the header's index and column meanings, or None."""
    lines = body.split("\n")
    for index in range(len(lines) - 1):
        if _ROW.fullmatch(lines[index]) and _SEPARATOR.fullmatch(lines[index + 1]):
            names = [Cell.parse(cell).text.lower() for cell in _cells(lines[index])]
            meanings = [COLUMNS.get(name, name) for name in names]
            if "date" in meanings and ("speaker" in meanings or "title" in meanings):
                return index, meanings
    return None


def read_schedule(page: Page, zone: ZoneInfo) -> SourceResult:
    """One talk a row of the page's schedule table; notes on whatever else the page holds."""
    result = SourceResult()
    where = page.where
    body = page.body.split("\n")
    header, meanings = find_table(page.body)
    used_lines = {header, header + 1}
    page.report_unused(result, used={"date", "location"})
    for number, name in enumerate(meanings):
        if name not in COLUMNS.values():
            result.note(where, page.body_line + header, f"column {name!r} not imported")
    page_date = page.page_date()
    start_time, end_time, notes, room = _page_labels(body, used_lines)
    room = room or one_line(page.value("location") or "") or None
    anchors = _anchor_sections(body)
    rows = []
    index = header + 2
    while index < len(body) and _ROW.fullmatch(body[index]):
        rows.append(index)
        used_lines.add(index)
        index += 1
    if rows and start_time is None:
        raise InputError([Problem(where, page.body_line + header, "the schedule gives dates but the page gives "
                                  'no time for them: add a line like "**Time:** 2:00pm-3:00pm" above the table')])
    seen: dict[str, int] = {}
    for index in rows:
        line = page.body_line + index
        cells = dict(zip(meanings, (Cell.parse(c) for c in _cells(body[index]))))
        date_cell = cells.get("date", Cell("", None))
        day = _row_date(date_cell.text, page_date)
        if day is None:
            why = "needs a year: give the page a date" if _row_date(date_cell.text, date(2000, 1, 1)) else "is not a date"
            result.note(where, line, f"row not imported: {date_cell.text!r} {why}")
            continue
        row_time = _parse_time(cells["time"].text) if "time" in cells and not cells["time"].empty else None
        first, last = row_time or (start_time, end_time)
        try:
            start = localize(datetime.combine(day, first), zone)
        except ValueError as error:
            raise InputError([Problem(where, line, str(error))]) from None
        talk: dict[str, Any] = {}
        title, speaker = cells.get("title", Cell("", None)), cells.get("speaker", Cell("", None))
        if not title.empty:
            talk["title"] = title.text
        if not speaker.empty:
            name, affiliation = split_affiliation(speaker.text)
            if "affiliation" in cells and not cells["affiliation"].empty:
                affiliation = cells["affiliation"].text
            talk["speaker"] = speaker_value(name, affiliation, url=http_link(speaker.link or ""))
        talk["start"] = start
        if last is not None and last > first:
            talk["end"] = localize(datetime.combine(day, last), zone)
        location = cells["location"].text if "location" in cells and not cells["location"].empty else room
        if location:
            talk["location"] = location
        if http_link(title.link or ""):
            talk["url"] = title.link
        if notes and talk.get("title") or notes and talk.get("speaker"):
            talk["notes"] = notes
        section = anchors.get((title.link or "").lstrip("#")) if (title.link or "").startswith("#") else None
        if section:
            used_lines.update(section[1])
            talk["abstract"] = section[0]
        elif "abstract" in cells and not cells["abstract"].empty:
            talk["abstract"] = cells["abstract"].text
        key = day.isoformat()
        seen[key] = seen.get(key, 0) + 1
        uid = f"{where}#{key}" + (f"-{seen[key]}" if seen[key] > 1 else "")
        result.talks.append(ImportedTalk(talk, uid, f"{where}:{line}"))
    _report_paragraphs(result, page, body, used_lines)
    return result


def _page_labels(body: list[str], used: set[int]) -> tuple[time | None, time | None, str | None, str | None]:
    """The page's `**Time:** 2:00pm-3:00pm, Reception will follow.` and `**Room:** ...` lines."""
    start = end = notes = room = None
    for index, line in enumerate(body):
        match = _LABEL.fullmatch(line)
        if not match:
            continue
        value = Cell.parse(match["value"]).text.rstrip(".").strip()
        if match["label"].lower() in ("time", "when") and start is None:
            parsed = _parse_time(value)
            if parsed:
                start, end = parsed
                rest = _TIME.match(value)["rest"].strip()
                notes = rest.rstrip() + ("." if rest and not rest.endswith((".", "!", "?")) else "") if rest else None
                used.add(index)
        elif room is None and match["label"].lower() not in ("time", "when"):
            room = value
            used.add(index)
    return start, end, notes, room


def _parse_time(text: str) -> tuple[time, time | None] | None:
    """"2:00pm-3:00pm" -> (14:00, 15:00); "14:00" -> (14:00, None)."""
    match = _TIME.match(text.strip())
    if not match:
        return None

    def clock(hour: str, minute: str | None, half: str | None) -> time | None:
        h, m = int(hour), int(minute or 0)
        if half:
            h = h % 12 + (12 if half.lower() == "p" else 0)
        return time(h, m) if h < 24 and m < 60 else None

    second_half = match["p2"]
    start = clock(match["h1"], match["m1"], match["p1"] or second_half)
    end = clock(match["h2"], match["m2"], second_half) if match["h2"] else None
    if start is None or (match["m1"] is None and not (match["p1"] or second_half)):
        return None  # a bare number is no time
    return start, end


def _row_date(text: str, page_date: date | None) -> date | None:
    """A row's date: with its year, or the first such date on or after the page's own date."""
    iso = _ISO.search(text)
    if iso:
        try:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        except ValueError:
            return None
    month = day = year = None
    for match in _MONTH_DAY.finditer(text):
        if match[1][:3].lower() in MONTHS:
            month, day, year = MONTHS[match[1][:3].lower()], int(match[2]), match[3]
            break
    else:
        for match in _DAY_MONTH.finditer(text):
            if match[2][:3].lower() in MONTHS:
                month, day, year = MONTHS[match[2][:3].lower()], int(match[1]), match[3]
                break
    if month is None:
        return None
    if year:
        try:
            return date(int(year), month, day)
        except ValueError:
            return None
    if page_date is None:
        return None
    for candidate_year in range(page_date.year, page_date.year + 8):
        try:
            candidate = date(candidate_year, month, day)
        except ValueError:
            continue  # 29 February
        if candidate >= page_date:
            return candidate
    return None


def _anchor_sections(body: list[str]) -> dict[str, tuple[str, set[int]]]:
    """Each anchor's text: what follows the heading (or line) that holds it, up to the next heading or rule."""
    sections = {}
    for index, line in enumerate(body):
        for match in _ANCHOR.finditer(line):
            name = match[1] or match[2]
            lines = {index}
            text = []
            after = index + 1
            while after < len(body) and not body[after].lstrip().startswith("#") \
                    and not re.fullmatch(r"\s*(---+|\*\*\*+|___+)\s*", body[after]):
                lines.add(after)
                text.append(body[after])
                after += 1
            if not line.lstrip().startswith("#"):
                text.insert(0, _ANCHOR.sub("", re.sub(r"</a>", "", line)))
            abstract = clean_text("\n".join(text))
            if abstract:
                sections[name] = (abstract, lines)
    return sections


def _report_paragraphs(result: SourceResult, page: Page, body: list[str], used: set[int]) -> None:
    """A note for each paragraph of the page that went into no talk (headings and rules are layout)."""
    start = None
    for index in range(len(body) + 1):
        line = body[index] if index < len(body) else ""
        layout = not line.strip() or line.lstrip().startswith("#") or \
            re.fullmatch(r"\s*(---+|\*\*\*+|___+)\s*", line) is not None or index in used
        if not layout and start is None:
            start = index
        if layout and start is not None:
            text = " ".join(body[start:index])
            result.note(page.where, page.body_line + start, f"page text not imported: {shorten(text)!r}")
            start = None
