"""One talk's fields read from its YAML mapping: each checked, each problem at its key's line."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from announcer.errors import Problem
from announcer.sources.config import Series
from announcer.sources.talk import STATUSES, Speaker, Talk
from announcer.sources.timing import is_ambiguous, load_zone, localize, parse_duration
from announcer.sources.values import LINK, MAX_ID, MAX_LINE, MAX_URL, did_you_mean, shown
from announcer.sources.yamlfile import LineDict

TALK_KEYS = {"id", "title", "speaker", "start", "end", "duration", "timezone", "location",
             "online_url", "abstract", "notes", "links", "status", "url", "new_talk",
             "source_uid"}  # where `announcer import` found the talk (SPEC 8.1): checked as text, not used
SPEAKER_KEYS = {"name", "affiliation", "url", "bio"}
# Keys people write from habit (and that seminar pages use), and where what they hold goes.
KEY_HINTS = {"room": '"location"', "venue": '"location"', "place": '"location"', "where": '"location"',
             "zoom": '"online_url"', "online": '"online_url"', "stream": '"online_url"',
             "date": '"start"', "time": '"start"', "when": '"start"', "description": '"abstract"',
             "summary": '"abstract"', "bio": "speaker: {bio: ...}",
             "affiliation": "speaker: {affiliation: ...}"}
LINK_NAMES = {"video", "recording", "slides", "paper", "readings", "preprint", "code", "poster"}
SPEAKER_HINTS = {"institution": '"affiliation"', "university": '"affiliation"', "homepage": '"url"',
                 "website": '"url"', "web": '"url"', "about": '"bio"'}
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TIME_ONLY = re.compile(r"\d{1,2}:\d{2}(:\d{2})?")
EXAMPLE_START = "2027-02-21 14:00"
YEARS = range(1900, 3000)  # a talk's year: far from datetime's limits, which a zone or a schedule would cross


def key_hint(key: object) -> str:
    """Where an unknown talk key belongs: ' (did you mean "location"?)', or links: {video: ...}."""
    name = str(key).casefold()
    if name == "announce":
        return ' ("announce: together" goes at the top of a file of several talks, beside "talks:")'
    if name in LINK_NAMES:
        return f" (did you mean links: {{{key}: ...}}?)"
    if name in KEY_HINTS:
        return f" (did you mean {KEY_HINTS[name]}?)"
    return did_you_mean(str(key), TALK_KEYS)


class TalkReader:
    """Validates one talk's mapping, collecting every problem with its line."""

    def __init__(self, path: Path, data: LineDict, course: LineDict | None = None):
        self.path, self.data, self.problems = path, data, []
        self.course = course  # a course file's shared keys, when the session has notes of its own

    def line(self, key: str) -> int:
        return self.data.lines.get(key, self.data.line)

    def problem(self, key: str, message: str, warning: bool = False) -> None:
        self.problems.append(Problem(self.path, self.line(key), message, warning))

    def text(self, key: str, value: Any = None, one_line: bool = False, where: str = "",
             limit: int = MAX_LINE) -> str | None:
        value = self.data.get(key) if value is None and not where else value
        if value is None:
            return None
        if (isinstance(value, bool) or not isinstance(value, (str, int, float))
                or isinstance(value, int) and abs(value) >= 10 ** 100):
            self.problem(key, f'"{where or key}" must be text; put it in quotes')
            return None
        value = str(value).strip()
        if one_line and "\n" in value:
            self.problem(key, f'"{where or key}" must be on one line (it goes into mail headers)')
            return None
        if one_line and len(value) > limit:
            self.problem(key, f'"{where or key}" is {len(value)} characters long: at most {limit}'
                              + (" (it goes into mail headers)" if limit == MAX_LINE else ""))
            return None
        return value or None

    def link(self, key: str, value: Any = None, where: str = "") -> str | None:
        url = self.text(key, value, one_line=True, where=where, limit=MAX_URL)
        if url and not LINK.fullmatch(url):
            self.problem(key, f'"{where or key}" must be an http(s) or mailto link, not {shown(url)}')
            return None
        return url

    def talk(self, default_id: str, series: Series) -> Talk | None:
        for key in self.data:
            if key not in TALK_KEYS:
                self.problem(key, f'unknown key "{key}"{key_hint(key)}')
        talk_id = self.text("id") or default_id  # one line and its length: checked below
        self.text("source_uid", one_line=True)
        if not ID.fullmatch(talk_id):
            self.problem("id", f'id {shown(talk_id)} may hold only letters, digits, ".", "_" and "-"')
        elif len(talk_id) > MAX_ID:
            self.problem("id", f"id {shown(talk_id)} is {len(talk_id)} characters long: at most {MAX_ID} "
                               "(it names the preview's files)")
        zone = series.timezone
        if "timezone" in self.data:
            try:
                zone = load_zone(self.text("timezone") or "")
            except ValueError as error:
                self.problem("timezone", str(error))
        start = self.moment("start", zone)
        end = self.end(start, zone, series)
        status = self.text("status") or "confirmed"
        if status not in STATUSES:
            self.problem("status", f'status {shown(status)} must be one of {", ".join(STATUSES)}'
                                   f"{did_you_mean(status, STATUSES)}")
        talk = None
        speakers = self.speakers()
        links = self.links()
        room = self.location(series)
        fields = dict(
            title=self.text("title", one_line=True),
            location=room,
            online_only="location" in self.data and room is None,
            online_url=self.link("online_url"),
            abstract=self.text("abstract"),
            notes=self.notes(),
            url=self.link("url"),
        )
        new_talk = self.data.get("new_talk", False)
        if not isinstance(new_talk, bool):
            self.problem("new_talk", "new_talk must be true or false")
        if start is not None and end is not None and not any(not p.warning for p in self.problems):
            talk = Talk(id=talk_id, speakers=speakers, start=start, end=end, timezone=zone, links=links,
                        status=status, path=self.path, line=self.data.line, new_talk=new_talk is True, **fields)
        return talk

    def location(self, series: Series) -> str | None:
        """The talk's room: the series' when it gives none; none at all for `online`, null or ""."""
        if "location" not in self.data:
            return series.location
        room = self.text("location", one_line=True)
        return None if room is None or room.casefold() == "online" else room

    def notes(self) -> str | None:
        """The talk's notes: a course session's own, then the course's, never one for the other (SPEC 8.5)."""
        own = self.text("notes")
        if self.course is None:
            return own
        course = TalkReader(self.path, self.course)
        shared = course.text("notes")
        self.problems += course.problems
        return "\n\n".join(note for note in (own, shared) if note) or None

    def moment(self, key: str, zone: ZoneInfo, required: bool = True) -> datetime | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, f'a talk needs "start", e.g. start: {EXAMPLE_START}')
            return None
        if isinstance(value, bool) or isinstance(value, (int, float)):
            self.problem(key, f'"{key}: {shown(value)}" was read as a number (YAML turns a bare 14:00 into 840): '
                              f"write the date and time, e.g. {key}: {EXAMPLE_START}")
            return None
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            self.problem(key, f'"{key}" has a date but no time: write e.g. {key}: {value} 14:00')
            return None
        elif not isinstance(value, str):
            self.problem(key, f'"{key}" must be a date and time like {EXAMPLE_START}')
            return None
        else:
            text = value.strip()
            if _TIME_ONLY.fullmatch(text):
                self.problem(key, f'"{key}: {text}" is a time without a date: write e.g. {key}: 2027-02-21 {text}')
                return None
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                self.problem(key, f'"{key}": {shown(text)} is not a date and time like {EXAMPLE_START} '
                                  "or 2027-02-21T14:00-05:00")
                return None
        if moment.year not in YEARS:
            self.problem(key, f'"{key}": the year {moment.year} is not between {YEARS.start} and {YEARS.stop - 1}')
            return None
        if moment.tzinfo is not None:
            return moment.astimezone(zone)
        try:
            local = localize(moment, zone)
        except ValueError as error:
            self.problem(key, str(error))
            return None
        if is_ambiguous(local):
            self.problem(key, f"{moment:%Y-%m-%d %H:%M} happens twice in {zone.key} (clocks go back): "
                              "taking the first; give an offset like -04:00 to choose", warning=True)
        return local

    def end(self, start: datetime | None, zone: ZoneInfo, series: Series) -> datetime | None:
        if "end" in self.data and "duration" in self.data:
            self.problem("duration", 'give "end" or "duration", not both')
            return None
        if "end" in self.data:
            end = self.moment("end", zone)
            # As instants: in the autumn fold 01:30 EST comes after 01:30 EDT, while datetimes
            # of one zone compare by their wall-clock times.
            if start is not None and end is not None and end.astimezone(timezone.utc) <= start.astimezone(timezone.utc):
                self.problem("end", f"end {end:%Y-%m-%d %H:%M} is not after start {start:%Y-%m-%d %H:%M}")
                return None
            return end
        length = series.duration
        if "duration" in self.data:
            try:
                length = parse_duration(self.data["duration"])
            except ValueError as error:
                self.problem("duration", f'"duration": {error}')
                return None
            if length <= timedelta(0):
                self.problem("duration", '"duration" must be longer than zero')
                return None
        return None if start is None else (start.astimezone(timezone.utc) + length).astimezone(zone)

    def speakers(self) -> tuple[Speaker, ...]:
        value = self.data.get("speaker")
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        speakers = []
        for item in items:
            if isinstance(item, dict):
                for key in item:
                    if key not in SPEAKER_KEYS:
                        hint = SPEAKER_HINTS.get(str(key).casefold())
                        hint = f" (did you mean {hint}?)" if hint else did_you_mean(str(key), SPEAKER_KEYS)
                        self.problem("speaker", f'unknown speaker key "{key}"{hint}')
                name = self.text("speaker", item.get("name"), one_line=True, where="speaker name")
                if not name:
                    self.problem("speaker", 'a speaker mapping needs "name"')
                    continue
                speakers.append(Speaker(
                    name=name,
                    affiliation=self.text("speaker", item.get("affiliation"), one_line=True,
                                          where="speaker affiliation"),
                    url=self.link("speaker", item.get("url"), where="speaker url"),
                    bio=self.text("speaker", item.get("bio"), where="speaker bio")))
            else:
                name = self.text("speaker", item, one_line=True, where="speaker")
                if name:
                    speakers.append(Speaker(name=name))
        return tuple(speakers)

    def links(self) -> tuple[tuple[str, str], ...]:
        value = self.data.get("links")
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.problem("links", '"links" must map names to URLs, e.g. video: https://...')
            return ()
        links = []
        for name, url in value.items():
            checked = self.link("links", url, where=f"links: {name}")
            if checked:
                links.append((str(name), checked))
        return tuple(links)
