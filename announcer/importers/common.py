"""What every importer yields: talks as plain talk-file mappings, and notes with their places."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from announcer.errors import Problem
from announcer.sources.timing import localize

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r"\s+")
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_AFFILIATION = re.compile(r"(?P<name>.+?)\s*\((?P<affiliation>[^()]+)\)\s*$")
_URL = re.compile(r"https?://\S+")


@dataclass
class ImportedTalk:
    """One talk read from a source: its talk-file keys (start/end aware), its source_uid and place."""

    data: dict[str, Any]
    source_uid: str
    place: str  # "seed.ics:30": where the talk begins in its source, for messages

    @property
    def start(self) -> datetime:
        return self.data["start"]


@dataclass
class SourceResult:
    """What one source gave: its talks and the notes about what had no place in them."""

    talks: list[ImportedTalk] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    def note(self, path: str, line: int | None, message: str) -> None:
        self.notes.append(Problem(path, line, message))


def one_line(text: Any) -> str:
    """Text for a header-bound field: control characters out, whitespace collapsed to single spaces."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", str(text))).strip()


def clean_text(text: Any) -> str:
    """Multi-line text: control characters out (tabs and newlines kept), line ends normalised."""
    value = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", "", value).strip()


def shorten(text: str, width: int = 50) -> str:
    """The start of a text on one line, for a report line."""
    flat = one_line(text)
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def split_affiliation(text: str) -> tuple[str, str | None]:
    """"Jeffrey Pennington (Google)" -> ("Jeffrey Pennington", "Google")."""
    match = _AFFILIATION.fullmatch(one_line(text))
    if match:
        return match["name"], match["affiliation"].strip()
    return one_line(text), None


def video_link(value: Any) -> str | None:
    """A video URL; a bare YouTube id becomes its watch URL. None when it is neither."""
    text = one_line(value)
    if _YOUTUBE_ID.fullmatch(text):
        return f"https://www.youtube.com/watch?v={text}"
    return text if _URL.fullmatch(text) else None


def http_link(value: Any) -> str | None:
    """The value when it is an http(s) link, else None."""
    text = one_line(value)
    return text if _URL.fullmatch(text) else None


def slug(text: str, limit: int = 40) -> str:
    """ASCII lower-case words joined by "-": "Lenka Zdeborová" -> "lenka-zdeborova"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    out = ""
    for word in words:
        if len(out) + len(word) + 1 > limit and out:
            break
        out = f"{out}-{word}" if out else word
    return out[:limit]


def speaker_value(name: str, affiliation: str | None = None, bio: str | None = None,
                  url: str | None = None) -> str | dict[str, str]:
    """A talk file's `speaker`: a plain name, or a mapping when there is more than the name."""
    extra = {"affiliation": affiliation and one_line(affiliation), "url": url, "bio": bio and clean_text(bio)}
    extra = {key: value for key, value in extra.items() if value}
    return {"name": one_line(name), **extra} if extra else one_line(name)


def moment_in(value: Any, zone: ZoneInfo) -> datetime | None:
    """A date and time written in a page or a talk file as an aware moment (without an offset: in `zone`)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None  # a date alone has no time of day
    if value.tzinfo is not None:
        return value.astimezone(zone)
    try:
        return localize(value, zone)
    except ValueError:
        return None
