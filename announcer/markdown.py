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
    while _MAY_NEED_EDITS.search(source):
        data = source.encode()  # the ranges count bytes
        tags, links = _edits(source, data)
        if not tags and not links:
            return source
        for at, insert in sorted(tags or links, reverse=True):
            data = data[:at] + insert + data[at:]
        source = data.decode()
    return source


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
    lines: list[str] = []
    indents: list[str] = []
    numbers: list[int | None] = []  # one per open list: the next item's number, None when bulleted
    marker = ""  # the open item's "- " or "3. ", until its first line is written
    pieces: list[str] = []  # the open paragraph's (or heading's, or tight item's) text
    links: list[tuple[str, int]] = []  # open links: their address, and where their text starts

    def write_text() -> None:
        nonlocal marker
        if not pieces:
            return
        indent = "".join(indents)
        first = indent[: len(indent) - len(marker)] + marker if marker else indent
        for number, piece in enumerate("".join(pieces).split("\n")):
            lines.extend(wrap_lines(" ".join(piece.split()), width, first if number == 0 else indent, indent))
        pieces.clear()
        marker = ""

    for event in _parsed(source).events:
        if event == "SoftBreak":
            pieces.append(" ")
        elif event == "HardBreak":
            pieces.append("\n")
        elif event == "Rule":
            write_text()
            lines.extend(["".join(indents) + "-" * 20, ""])
        elif "Text" in event:
            pieces.append(event["Text"])
        elif "Code" in event:
            pieces.append(event["Code"])
        elif "Start" in event:
            tag = event["Start"]
            name = tag if isinstance(tag, str) else next(iter(tag))
            if name == "Link":
                links.append((tag["Link"]["dest_url"], len(pieces)))
            elif name not in ("Emphasis", "Strong", "Image"):
                write_text()  # a block starts: the text of a tight item before it is done
                if name == "List":
                    numbers.append(tag["List"])
                elif name == "Item":
                    marker = "- " if numbers[-1] is None else f"{numbers[-1]}. "
                    numbers[-1] = None if numbers[-1] is None else numbers[-1] + 1
                    indents.append(" " * len(marker))
                elif name == "BlockQuote":
                    indents.append("> ")
        elif "End" in event:
            tag = event["End"]
            name = tag if isinstance(tag, str) else next(iter(tag))
            if name == "Link" and links:
                href, at = links.pop()
                shown = "".join(pieces[at:]).strip()
                if href and href.removeprefix("mailto:") != shown:
                    pieces.append(f" <{href}>")
            elif name == "CodeBlock":
                indent = "".join(indents)
                code = "".join(pieces).rstrip("\n")
                lines.extend(f"{indent}    {line}".rstrip() for line in code.split("\n"))
                lines.append("")
                pieces.clear()
            elif name in ("Paragraph", "Heading"):
                write_text()
                lines.append("".join(indents).rstrip())
            elif name == "Item":
                write_text()
                indents.pop()
            elif name == "BlockQuote":
                write_text()
                indents.pop()
            elif name == "List":
                numbers.pop()
                if not numbers:
                    lines.append("")
    write_text()
    return "\n".join(lines).strip("\n")


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
