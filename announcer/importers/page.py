"""A page with front matter, split: its keys (each with its line) and its body (with its first line).

Hugo writes TOML between `+++` lines, Jekyll YAML between `---` lines (SPEC 8.1).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from typing import Any

import yaml

from announcer.errors import InputError, Problem
from announcer.importers.common import SourceResult
from announcer.sources.yamlfile import _FastLineLoader

# Front matter keys (compared case-insensitively) -> what they are in a talk.
KEYS = {"title": "title", "speaker": "speaker", "speakers": "speaker", "date": "date",
        "venue": "location", "location": "location", "room": "location",
        "abstract": "abstract", "topic_abstract": "abstract", "speaker_bio": "bio", "bio": "bio",
        "affiliation": "affiliation", "video": "video", "recorded_video": "video", "slides": "slides",
        "url": "url"}
FENCES = {"+++": "toml", "---": "yaml"}


class Page:
    """A page split into its front matter (with each key's line) and its body (with its first line)."""

    def __init__(self, text: str, where: str):
        self.where = where
        lines = text.lstrip("\ufeff").split("\n")
        fence = lines[0].strip()
        if fence not in FENCES:
            raise InputError([Problem(where, 1, "not a page with front matter (no +++ or --- first line)")])
        try:
            closing = next(n for n in range(1, len(lines)) if lines[n].strip() == fence)
        except StopIteration:
            raise InputError([Problem(where, 1, f"the front matter opened by {fence} is never closed")]) from None
        matter = "\n".join(lines[1:closing])
        self.kind = FENCES[fence]
        self.matter, key_lines = (_toml if self.kind == "toml" else _yaml)(matter, where)
        self.lines = {key: line + 1 for key, line in key_lines.items()}  # +1: the opening fence
        self.body_line = closing + 2
        self.body = "\n".join(lines[closing + 1:])
        self.fields = {}  # talk meaning -> (original key, value)
        for key, value in self.matter.items():
            meaning = KEYS.get(str(key).lower())
            if meaning and meaning not in self.fields:
                self.fields[meaning] = (key, value)

    def value(self, meaning: str) -> Any:
        return self.fields.get(meaning, (None, None))[1]

    def line(self, key: str) -> int:
        return self.lines.get(key, 1)

    def report_unused(self, result: SourceResult, used: set[str]) -> None:
        """A note for each front matter key with a value that has no place in a talk."""
        taken = {self.fields[meaning][0] for meaning in used if meaning in self.fields}
        for key, value in self.matter.items():
            if key not in taken and value not in (None, "", [], {}):
                result.note(self.where, self.line(key), f"{key} not imported")

    def page_date(self) -> date | None:
        """The page's own `date` (a date, or the date of a date and time)."""
        value = self.value("date")
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str) and value.strip():
            try:
                return datetime.fromisoformat(value.strip()).date()
            except ValueError:
                return None
        return None


def _toml(text: str, where: str) -> tuple[dict, dict[str, int]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"line (\d+)", str(error))
        number = int(line[1]) if line else len(text.rstrip("\n").split("\n"))  # else: at the end
        raise InputError([Problem(where, number + 1, f"not valid TOML front matter: {error}")]) from None
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        match = re.match(r"(?:\[+\s*)?\"?([A-Za-z0-9_-]+)", raw)  # a top-level key or [table]
        if match and ("=" in raw or raw.startswith("[")):
            lines.setdefault(match[1], number)
    return data, lines


def _yaml(text: str, where: str) -> tuple[dict, dict[str, int]]:
    try:
        data = yaml.load(text, Loader=_FastLineLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError([Problem(where, mark.line + 2 if mark else 1,
                                  f"not valid YAML front matter: {getattr(error, 'problem', error)}")]) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise InputError([Problem(where, 2, "the front matter is not a mapping of keys")])
    return dict(data), dict(data.lines)
