"""SOURCE arguments -> texts: .ics files, pages with front matter, folders of them, ICS feed URLs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from announcer.errors import InputError, Problem
from announcer.importers.common import SourceResult

URL_SCHEMES = ("http://", "https://", "webcal://")
PAGE_SUFFIXES = {".md", ".markdown", ".html", ".htm"}
TIMEOUT = 30  # seconds, for a feed that does not answer
MAX_BYTES = 20_000_000  # a calendar feed larger than this is not a seminar's


def read_sources(sources: list[str], zone: ZoneInfo, now: datetime) -> list[SourceResult]:
    """Every source read into talks; every problem (all sources tried) raised together."""
    results, problems = [], []
    for source in sources:
        try:
            results.extend(_read_source(source, zone, now))
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(problems)
    for result in results:  # each source's notes in the order of its lines
        result.notes.sort(key=lambda note: note.line or 0)
    return results


def _read_source(source: str, zone: ZoneInfo, now: datetime) -> list[SourceResult]:
    from announcer.importers.ics import read_calendar

    if source.lower().startswith(URL_SCHEMES):
        text = fetch(source)
        if not _is_calendar(text):
            raise InputError([Problem(source, None, "not an ICS feed (no BEGIN:VCALENDAR)")])
        return [read_calendar(text, source, zone, now)]
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES | {".ics"})
        results = []
        for file in files:
            text = read_text(file)
            if _is_calendar(text) or text.lstrip("\ufeff").split("\n", 1)[0].strip() in ("+++", "---"):
                results.append(_read_text(text, str(file), zone, now))
        return results
    return [_read_text(read_text(path), str(path), zone, now)]


def _read_text(text: str, where: str, zone: ZoneInfo, now: datetime) -> SourceResult:
    from announcer.importers.frontmatter import read_page
    from announcer.importers.ics import read_calendar

    if _is_calendar(text):
        return read_calendar(text, where, zone, now)
    if text.lstrip("\ufeff").split("\n", 1)[0].strip() in ("+++", "---"):
        return read_page(text, where, zone, html=Path(where).suffix.lower() in (".html", ".htm"))
    raise InputError([Problem(where, 1, "not an ICS calendar (BEGIN:VCALENDAR) or a page with front matter "
                                        "(+++ or --- on its first line)")])


def _is_calendar(text: str) -> bool:
    return text.lstrip("\ufeff \r\n\t")[:15].upper() == "BEGIN:VCALENDAR"


def read_text(path: Path) -> str:
    """A file's UTF-8 text; one problem line when it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError([Problem(path, None, f"cannot read: {error.strerror}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError([Problem(path, line, f"not UTF-8 text (byte 0x{raw[error.start]:02x})")]) from None


def fetch(url: str) -> str:
    """The text at an http(s) URL (webcal:// is fetched as https://); one problem line on failure."""
    import urllib.error
    import urllib.request

    address = "https://" + url[len("webcal://"):] if url.lower().startswith("webcal://") else url
    request = urllib.request.Request(address, headers={"User-Agent": "announcer-import"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            raw = response.read(MAX_BYTES + 1)
            charset = response.headers.get_content_charset() or "utf-8"
    except urllib.error.HTTPError as error:
        raise InputError([Problem(url, None, f"HTTP {error.code} {error.reason}")]) from None
    except urllib.error.URLError as error:
        reason = getattr(error.reason, "strerror", None) or str(error.reason)
        raise InputError([Problem(url, None, f"cannot fetch: {reason}")]) from None
    except (OSError, ValueError) as error:  # a timeout, a reset, a malformed address
        raise InputError([Problem(url, None, f"cannot fetch: {error}")]) from None
    if len(raw) > MAX_BYTES:
        raise InputError([Problem(url, None, f"larger than {MAX_BYTES // 1_000_000} MB: not a seminar's calendar")])
    try:
        return raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise InputError([Problem(url, None, f"not {charset} text")]) from None
