"""Markdown (abstracts, bios) as plain text or as HTML, written from the parser's events (SPEC 2.3).

CommonMark is parsed by pulldown-cmark (Rust) through pyromark, once a source; both renderings are
written here from its events, so that what the organiser wrote can only come out as text: raw
HTML events are escaped like any text, and a link or image is written as one only when its
address is http(s), mailto or relative (or a data: image). For everything else the HTML is
what pulldown-cmark's own writer gives (tests/test_markdown.py compares them).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import pyromark
from markupsafe import Markup

from announcer.compose.fill import LABEL_WIDTH, WIDTH, wrap_lines

# An address with a scheme must have one of these; one without (a relative address) is harmless.
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_SAFE_SCHEMES = {"http", "https", "mailto"}
_SAFE_IMAGE = re.compile(r"data:image/(?:gif|png|jpeg|webp);", re.IGNORECASE)
# What browsers ignore in an address before reading its scheme: C0 controls, space; tabs, newlines inside.
_IGNORED_IN_ADDRESS = re.compile(r"^[\x00-\x20]+|[\t\n\r]")
_ATTRIBUTE_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})
_HREF_KEPT = "!#$%()*+,-./:;=?@^_~&'"  # pulldown-cmark's href-safe characters, & and ' escaped below


def safe_address(address: str, image: bool = False) -> bool:
    """Whether a link (or image) may point there: http(s), mailto, relative, or a data: image."""
    address = _IGNORED_IN_ADDRESS.sub("", address)
    scheme = _SCHEME.match(address)
    if scheme is None or scheme.group(1).lower() in _SAFE_SCHEMES:
        return True
    return image and bool(_SAFE_IMAGE.match(address))


def _href(address: str) -> str:
    return quote(address, safe=_HREF_KEPT).replace("&", "&amp;").replace("'", "&#x27;")


def _name(tag: Any) -> str:
    return tag if isinstance(tag, str) else next(iter(tag))


# A talk's abstract and bio are rendered for several parts and kinds, and a pass may send every
# announcement before any reminder: room for the sources of a few thousand talks (a few MB at most).
@lru_cache(maxsize=4096)
def _events(source: str) -> tuple[Any, ...]:
    """The source's Markdown events (CommonMark, no extensions), once for both renderings."""
    return tuple(pyromark.events(source))


@lru_cache(maxsize=4096)
def markdown_text(source: str | None, width: int = WIDTH) -> str:
    """Markdown as plain text: paragraphs filled to width, links as "text <url>", lists dashed."""
    if not source:
        return ""
    text = _PlainText(width)
    for event in _events(source):
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
        elif "Text" in event or "Code" in event or "InlineHtml" in event:  # raw HTML is text
            self.pieces.append(event.get("Text") or event.get("Code") or event.get("InlineHtml"))
        elif "Html" in event:  # a line of an HTML block, which reads as a paragraph
            self.pieces.append(event["Html"].replace("\n", " "))
        elif "Start" in event:
            self.start(event["Start"])
        elif "End" in event:
            self.end(event["End"])

    def start(self, tag: Any) -> None:
        name = tag if isinstance(tag, str) else next(iter(tag))
        if name == "Link":
            link = tag["Link"]
            shown = link["link_type"] == "Email" or safe_address(link["dest_url"])
            self.links.append((link["dest_url"] if shown else "", len(self.pieces)))
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
        elif name in ("Paragraph", "Heading", "HtmlBlock"):
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
    """Markdown as HTML; raw HTML shows as text, and a link to a script or file is not a link."""
    if not source:
        return Markup("")
    html = _HtmlWriter()
    html.write_all(iter(_events(source)))
    return Markup("".join(html.parts))


# The tags that a start or end event without details writes: (text, whether it opens a block).
_OPENING = {"Paragraph": ("<p>", True), "HtmlBlock": ("<p>", True), "Item": ("<li>", True),
            "Emphasis": ("<em>", False), "Strong": ("<strong>", False)}
_CLOSING = {"Paragraph": "</p>\n", "Item": "</li>\n", "Emphasis": "</em>", "Strong": "</strong>",
            "CodeBlock": "</code></pre>\n"}


def _escaped(text: str) -> str:
    """Text as HTML body text (quotes kept, as pulldown-cmark writes them)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _HtmlWriter:
    """Markdown events written as HTML, tag for tag as pulldown-cmark writes them, but for raw
    HTML, which is escaped as text (an HTML block becomes a paragraph), and unsafe addresses."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.links: list[bool] = []    # for each open link: whether its <a> was written

    def open_block(self, tag: str) -> None:
        """A block's opening tag, at the start of a line."""
        if self.parts and self.parts[-1][-1] != "\n":
            self.parts.append("\n")
        self.parts.append(tag)

    def write_all(self, events: Any) -> None:
        parts = self.parts
        for event in events:
            if event.__class__ is str:
                if event == "SoftBreak":
                    parts.append("\n")
                elif event == "HardBreak":
                    parts.append("<br />\n")
                elif event == "Rule":
                    self.open_block("<hr />\n")
                continue
            ((key, value),) = event.items()
            if key == "Text" or key == "Html" or key == "InlineHtml":  # raw HTML is text like any other
                if value:
                    parts.append(_escaped(value))
            elif key == "Start":
                if value.__class__ is str and value in _OPENING:
                    tag, block = _OPENING[value]
                    self.open_block(tag) if block else parts.append(tag)
                else:
                    self.start(value, events)
            elif key == "End":
                closing = _CLOSING.get(value) if value.__class__ is str else None
                if closing is not None:
                    parts.append(closing)
                else:
                    self.end(value)
            elif key == "Code":
                parts.append(f"<code>{_escaped(value)}</code>")

    def start(self, tag: Any, events: Any) -> None:
        name = _name(tag)
        if name == "Heading":
            self.open_block(f"<{tag['Heading']['level'].lower()}>")
        elif name == "BlockQuote":
            self.open_block("<blockquote>\n")
        elif name == "List":
            start = tag["List"]
            self.open_block("<ul>\n" if start is None else "<ol>\n" if start == 1 else f'<ol start="{start}">\n')
        elif name == "CodeBlock":
            kind = tag["CodeBlock"]
            language = kind["Fenced"].split(" ")[0] if isinstance(kind, dict) else ""
            self.open_block(f'<pre><code class="language-{language.translate(_ATTRIBUTE_ESCAPES)}">'
                            if language else "<pre><code>")
        elif name == "Link":
            self.start_link(tag["Link"])
        elif name == "Image":
            self.write_image(tag["Image"], _alt_text(events))

    def start_link(self, link: dict) -> None:
        address = link["dest_url"]
        if link["link_type"] == "Email":
            address = "mailto:" + address
        elif not safe_address(address):
            self.links.append(False)
            return
        self.links.append(True)
        title = f' title="{link["title"].translate(_ATTRIBUTE_ESCAPES)}"' if link["title"] else ""
        self.parts.append(f'<a href="{_href(address)}"{title}>')

    def write_image(self, image: dict, alt: str) -> None:
        if not safe_address(image["dest_url"], image=True):
            if alt:
                self.parts.append(_escaped(alt))
            return
        title = f' title="{image["title"].translate(_ATTRIBUTE_ESCAPES)}"' if image["title"] else ""
        self.parts.append(f'<img src="{_href(image["dest_url"])}" alt="{alt.translate(_ATTRIBUTE_ESCAPES)}"{title} />')

    def end(self, tag: Any) -> None:
        name = _name(tag)
        if name == "Link":
            if self.links.pop():
                self.parts.append("</a>")
        elif name == "Heading":
            self.parts.append(f"</{tag['Heading'].lower()}>\n")
        elif name == "List":
            self.parts.append("</ol>\n" if tag["List"] else "</ul>\n")
        elif name == "BlockQuote":
            self.parts.append("</blockquote>\n")
        elif name == "HtmlBlock":  # its lines end in newlines: the paragraph ends on the last one
            if self.parts and self.parts[-1].endswith("\n"):
                self.parts[-1] = self.parts[-1][:-1]
            self.parts.append("</p>\n")


def _alt_text(events: Any) -> str:
    """An image's description as plain text: the events up to the image's end, read from `events`."""
    depth = 0
    pieces = []
    for event in events:
        if isinstance(event, str):  # a break or a rule
            pieces.append(" ")
            continue
        ((key, value),) = event.items()
        if key == "Start":
            depth += 1
        elif key == "End":
            if depth == 0:
                break
            depth -= 1
        elif key != "Html":
            pieces.append(value)
    return "".join(pieces)
