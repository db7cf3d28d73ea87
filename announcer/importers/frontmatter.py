"""Pages with front matter -> talks (SPEC 8.1): Hugo (TOML between +++) and Jekyll (YAML between ---).

A page is one talk (its keys, its body as the abstract when it has no abstract key), or, when its
body holds a schedule table, one talk a row (schedule.py).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from announcer.importers.common import (
    ImportedTalk,
    SourceResult,
    clean_text,
    http_link,
    moment_in,
    one_line,
    shorten,
    speaker_value,
    split_affiliation,
    video_link,
)
from announcer.importers.page import Page
from announcer.importers.schedule import find_table, read_schedule


def read_page(text: str, where: str, zone: ZoneInfo, html: bool = False) -> SourceResult:
    """The talk (or the schedule's talks) of one page with front matter."""
    page = Page(text, where)
    result = SourceResult()
    body = _html_text(page.body) if html else page.body
    if not html and find_table(body) is not None:
        return read_schedule(page, zone)
    if page.value("speaker") is None and page.value("abstract") is None:
        result.note(where, 1, "no speaker, abstract or schedule table: not a talk page, not imported")
        return result
    page.report_unused(result, used={"title", "speaker", "date", "location", "abstract", "bio", "affiliation",
                                     "video", "slides", "url"})
    talk = _page_talk(page, body, zone, result)
    if talk is not None:
        result.talks.append(ImportedTalk(talk, page.where, f"{where}:1"))
    return result


def _page_talk(page: Page, body: str, zone: ZoneInfo, result: SourceResult) -> dict | None:
    key, value = page.fields.get("date", ("date", None))
    start = moment_in(value, zone)
    if start is None:
        result.note(page.where, page.line(key), f"{key} {value!r} is not a date and time: talk not imported")
        return None
    data: dict[str, Any] = {}
    if one_line(page.value("title") or ""):
        data["title"] = one_line(page.value("title"))
    speakers = _speakers(page)
    if speakers:
        data["speaker"] = speakers[0] if len(speakers) == 1 else speakers
    data["start"] = start
    if one_line(page.value("location") or ""):
        data["location"] = one_line(page.value("location"))
    for meaning, convert in (("url", http_link),):
        if page.value(meaning) and convert(page.value(meaning)):
            data["url"] = convert(page.value(meaning))
    links = {}
    for meaning, convert in (("slides", http_link), ("video", video_link)):
        raw = page.value(meaning)
        if raw in (None, ""):
            continue
        link = convert(raw)
        if link:
            links[meaning] = link
        else:
            key = page.fields[meaning][0]
            result.note(page.where, page.line(key), f"{key} not imported: {shorten(str(raw))!r} is not an http(s) link")
    if links:
        data["links"] = links
    abstract = page.value("abstract")
    if abstract not in (None, ""):
        data["abstract"] = clean_text(abstract)
        if body.strip():
            result.note(page.where, page.body_line + _first_text_line(body),
                        f"page text not imported (the abstract key is used): {shorten(body)!r}")
    elif body.strip():
        data["abstract"] = clean_text(body)
    return data


def _first_text_line(body: str) -> int:
    for number, line in enumerate(body.split("\n")):
        if line.strip():
            return number
    return 0


def _speakers(page: Page) -> list:
    raw = page.value("speaker")
    items = raw if isinstance(raw, list) else ([] if raw in (None, "") else [raw])
    speakers = []
    for number, item in enumerate(items):
        extra = {"affiliation": page.value("affiliation"), "bio": page.value("bio")} if number == 0 else {}
        if isinstance(item, dict):
            lowered = {str(k).lower(): v for k, v in item.items()}
            name = one_line(lowered.get("name", ""))
            extra = {"affiliation": lowered.get("affiliation") or extra.get("affiliation"),
                     "bio": lowered.get("bio") or extra.get("bio"), "url": http_link(lowered.get("url") or "")}
        else:
            name, affiliation = split_affiliation(str(item))
            extra["affiliation"] = extra.get("affiliation") or affiliation
        if name:
            speakers.append(speaker_value(name, **{k: (str(v) if v else None) for k, v in extra.items()}))
    return speakers


class _TextOfHtml(HTMLParser):
    """The text of an HTML body, a blank line between blocks."""

    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        if tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data) -> None:
        if not self.skip:
            self.parts.append(data)


def _html_text(body: str) -> str:
    parser = _TextOfHtml()
    parser.feed(body)
    text = "".join(parser.parts)
    paragraphs = [one_line(p) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)
