"""Markdown (abstracts, bios) as plain text or as HTML, with raw HTML shown as text (SPEC 2.3).

CommonMark is parsed by pulldown-cmark (Rust) through pyromark. markdown-it-py, pure Python,
took a second to parse the abstracts and bios of a thousand talks, half of `check` (SPEC 7).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

import pyromark
from markupsafe import Markup

from announcer.text import LABEL_WIDTH, WIDTH, wrap_lines

_MARKDOWN = pyromark.Markdown()  # CommonMark, no extensions
_NOT_A_TAG = "\ufdd0"  # a Unicode noncharacter: never in text people write
_MARK = _NOT_A_TAG.encode()
# The addresses markdown-it-py (and so this tool before) would not link to: scripts, files, data.
_UNSAFE_ADDRESS = re.compile(r"\s*(?:javascript|vbscript|file|data):", re.IGNORECASE)
_SAFE_IMAGE = re.compile(r"\s*data:image/(?:gif|png|jpeg|webp);", re.IGNORECASE)
# Without "<" there is no HTML; without ":" (written plainly, escaped or as an entity) no address.
_MAY_NEED_EDITS = re.compile(r"[<:\\&]")


class _Parsed(NamedTuple):
    safe_source: str        # the source made safe by `_made_safe`: what the HTML is rendered from
    events: tuple[Any, ...]  # its Markdown events (pyromark's), for the plain text


# A talk's abstract and bio are rendered for several parts and kinds, and a pass may send every
# announcement before any reminder: room for the sources of a few thousand talks (a few MB at most).
@lru_cache(maxsize=4096)
def _parsed(source: str) -> _Parsed:
    """A source made safe, and its events, once for both renderings."""
    safe_source = _made_safe(source)
    events = tuple(_MARKDOWN.events(safe_source))
    if _NOT_A_TAG in safe_source:
        events = tuple(_without_mark(event) for event in events)
    return _Parsed(safe_source, events)


def _made_safe(source: str) -> str:
    """The source with raw HTML and links to scripts made text (SPEC 2.3), by small edits.

    CommonMark passes raw HTML and any link through, and pyromark has no switch for either, so:
    each `<` that opens an HTML block line or inline tag gets `_NOT_A_TAG` after it, which no tag
    can begin with and which is taken out of what is rendered; then a link or image to a
    javascript:, vbscript:, file: or data: address (but data: images), or one whose address holds
    a tag made text, gets a backslash before it, which makes it plain. Once a tag is text, what
    follows can read differently (a backtick inside it may now open a code span that holds a
    link or the next tag): hence the rounds, tags first and links once no tag is left. They end,
    as each round makes at least one `<`, `[` or `!` plain.
    """
    if not _MAY_NEED_EDITS.search(source):
        return source
    while True:
        data = source.encode()  # the ranges count bytes
        tags, links = _edits(source, data)
        if not tags and not links:
            return source
        for at, insert in sorted(tags or links, reverse=True):
            data = data[:at] + insert + data[at:]
        source = data.decode()


def _edits(source: str, data: bytes) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """What `_made_safe` inserts where (byte offsets) in one round: for tags, and for links."""
    tags: list[tuple[int, bytes]] = []
    links: list[tuple[int, bytes]] = []
    in_block = False
    for event, where in _MARKDOWN.events_with_range(source):
        if not isinstance(event, dict):
            continue
        if "Start" in event and event["Start"] == "HtmlBlock" or "End" in event and event["End"] == "HtmlBlock":
            in_block = "Start" in event
        elif "InlineHtml" in event or in_block and "Html" in event and _opens_html(event["Html"]):
            tags.append((data.index(b"<", where["start"]) + 1, _MARK))
        elif "Start" in event and isinstance(event["Start"], dict):
            link = event["Start"].get("Link") or event["Start"].get("Image")
            address = link and link["dest_url"]
            if link and (_NOT_A_TAG in address + link["title"]
                         or _UNSAFE_ADDRESS.match(address) and not _SAFE_IMAGE.match(address)):
                links.append((where["start"], b"\\"))
    return tags, links


def _opens_html(line: str) -> bool:
    """Whether a line of an HTML block begins with a tag: a line that an autolink begins (it is
    one once the block above it is text) is left alone. Every such line is made text in the same
    round, not one by one, which took a round per line: quadratic in a pasted HTML abstract."""
    if not line.lstrip().startswith("<"):
        return False
    events = _MARKDOWN.events(line.lstrip())
    next(events, None)  # the start of the paragraph (or HTML block) that the line makes alone
    first = next(events, None)
    link = first.get("Start") if isinstance(first, dict) else None
    return not (isinstance(link, dict) and link.get("Link", {}).get("link_type") in ("Autolink", "Email"))


def _without_mark(event: Any) -> Any:
    """The event with `_NOT_A_TAG` taken out of its text."""
    if isinstance(event, dict) and ("Text" in event or "Code" in event):
        return {kind: text.replace(_NOT_A_TAG, "") for kind, text in event.items()}
    return event


@lru_cache(maxsize=4096)
def markdown_text(source: str | None, width: int = WIDTH) -> str:
    """Markdown as plain text: paragraphs filled to width, links as "text <url>", lists dashed."""
    if not source:
        return ""
    text = _PlainText(width)
    for event in _parsed(source).events:
        text.add(event)
    text.write_text()
    return "\n".join(text.lines).strip("\n")


class _PlainText:
    """Markdown events written as lines of plain text, for `markdown_text`."""

    def __init__(self, width: int):
        self.width = width
        self.lines: list[str] = []
        self.indents: list[str] = []        # one per open list item ("  ", "   ") and quote ("> ")
        self.markers: dict[int, str] = {}   # items whose first line is not written yet: "- " or "3. "
        self.numbers: list[int | None] = []  # one per open list: its next item's number (None: dashes)
        self.pieces: list[str] = []         # the open paragraph's (or heading's, or tight item's) text
        self.links: list[tuple[str, int]] = []  # open links: their address, and where their text starts

    def add(self, event: Any) -> None:
        if event == "SoftBreak":
            self.pieces.append(" ")
        elif event == "HardBreak":
            self.pieces.append("\n")
        elif event == "Rule":
            self.write_text()
            self.lines.append(self.prefixes()[0] + "-" * 20)
            self.separate()
        elif "Text" in event or "Code" in event:
            self.pieces.append(event.get("Text", event.get("Code")))
        elif "Start" in event:
            self.start(event["Start"])
        elif "End" in event:
            self.end(event["End"])

    def start(self, tag: Any) -> None:
        name = tag if isinstance(tag, str) else next(iter(tag))
        if name == "Link":
            self.links.append((tag["Link"]["dest_url"], len(self.pieces)))
        elif name not in ("Emphasis", "Strong", "Image"):
            self.write_text()  # a block starts: the text of a tight item before it is done
            if name == "List":
                self.numbers.append(tag["List"])
            elif name == "Item":
                number = self.numbers[-1]
                marker = "- " if number is None else f"{number}. "
                self.numbers[-1] = None if number is None else number + 1
                self.markers[len(self.indents)] = marker
                self.indents.append(" " * len(marker))
            elif name == "BlockQuote":
                self.indents.append("> ")

    def end(self, tag: Any) -> None:
        name = tag if isinstance(tag, str) else next(iter(tag))
        if name == "Link" and self.links:
            href, at = self.links.pop()
            shown = "".join(self.pieces[at:]).strip()
            if href and href.removeprefix("mailto:") != shown:
                self.pieces.append(f" <{href}>")
        elif name == "CodeBlock":
            first, rest = self.prefixes()
            code = "".join(self.pieces).rstrip("\n").split("\n")
            self.pieces.clear()
            self.lines.extend(f"{first if n == 0 else rest}    {line}".rstrip() for n, line in enumerate(code))
            self.separate()
        elif name in ("Paragraph", "Heading"):
            self.write_text()
            self.separate()
        elif name == "Item":
            self.write_text()
            if len(self.indents) - 1 in self.markers:  # an empty item: its marker alone
                self.lines.append(self.prefixes()[0].rstrip())
            self.indents.pop()
        elif name == "BlockQuote":
            self.write_text()
            inside = self.separator()
            self.indents.pop()
            if self.lines and self.lines[-1] == inside:  # the quote's last blank line is the outside's
                self.lines[-1] = self.separator()
        elif name == "List":
            self.numbers.pop()
            if not self.numbers:
                self.separate()

    def prefixes(self) -> tuple[str, str]:
        """What the next line begins with (the markers of items not yet begun), and the lines after."""
        first = "".join(self.markers.get(n, indent) for n, indent in enumerate(self.indents))
        self.markers.clear()
        return first, "".join(self.indents)

    def separator(self) -> str:
        """A blank line where the text is now: ">" inside a quote."""
        return "".join(self.indents).rstrip()

    def separate(self) -> None:
        if self.lines and self.lines[-1] != self.separator():
            self.lines.append(self.separator())

    def write_text(self) -> None:
        """The open paragraph's text, filled to the width after its prefixes."""
        if not self.pieces:
            return
        first, rest = self.prefixes()
        for number, piece in enumerate("".join(self.pieces).split("\n")):
            self.lines.extend(wrap_lines(" ".join(piece.split()), self.width, first if number == 0 else rest, rest))
        self.pieces.clear()


def one_line(source: str | None, width: int = WIDTH - LABEL_WIDTH) -> str:
    """The start of a Markdown text as one line of at most `width` characters."""
    width = int(width)  # a template may pass 60.0
    # Only the first `width` words can show: the rest stays one unsplit piece, not read through.
    flat = " ".join(markdown_text(source, width=0).split(maxsplit=width if width > 0 else -1))
    if len(flat) <= width:
        return flat
    return flat[: width - 1].rsplit(" ", 1)[0].rstrip(",;:.-") + "…"


@lru_cache(maxsize=4096)
def markdown_html(source: str | None) -> Markup:
    """Markdown as HTML; raw HTML and links to scripts in the source show as text, never pass through."""
    if not source:
        return Markup("")
    return Markup(_MARKDOWN.html(_parsed(source).safe_source).replace(_NOT_A_TAG, ""))
