"""Text for message bodies: lines filled to a width, never starting with a Mailman command word,
and Markdown (abstracts, bios) as plain text or as HTML."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from announcer.message import command_word

WIDTH = 72
LABEL_WIDTH = 10  # "Speakers: " is the longest label of the text templates

# Raw HTML off (SPEC 2.3): tags in an abstract come out as text; javascript: links stay text.
# With html off the two HTML rules match nothing, so they are not run at all.
_HTML_RULES = ["html_block", "html_inline"]
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable(_HTML_RULES)
# A setext heading is a paragraph underlined with a line of "=" or "-". Looking for one reads
# every paragraph a second time, a fifth of the parse; a source in which no line ends with "=" or
# "-" (spaces and tabs after it aside) cannot have one, and parses to the same tokens without
# that rule (tests/test_text.py).
_MARKDOWN_WITHOUT_SETEXT = MarkdownIt("commonmark", {"html": False}).disable([*_HTML_RULES, "lheading"])
_SETEXT_UNDERLINE = re.compile(r"[-=][ \t]*(?:\r|\n|\Z)")


def _guard(lines: list[str]) -> list[str]:
    """Join a wrapped line that would begin with a Mailman command word onto the line before."""
    result: list[str] = []
    for line in lines:
        if result and command_word(line):
            result[-1] = f"{result[-1]} {line.strip()}"
        else:
            result.append(line)
    return result


def _fill(text: str, width: int, first: str, rest: str) -> list[str]:
    """textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest, break_long_words=False,
    break_on_hyphens=False) for words separated by single spaces: the same lines, found a line at a
    time with str.rfind rather than a word at a time (tests/test_text.py compares them). A word
    longer than the room on its line gets a line of its own."""
    lines: list[str] = []
    start, end = 0, len(text)
    indent = first
    while start < end:
        room = width - len(indent)
        if end - start <= room:
            lines.append(indent + text[start:])
            break
        cut = text.rfind(" ", start, start + room + 1) if room > 0 else -1
        if cut == -1:  # the next word alone is too long: it takes the whole line
            cut = text.find(" ", start)
            if cut == -1:
                lines.append(indent + text[start:])
                break
        lines.append(indent + text[start:cut])
        start, indent = cut + 1, rest
    return lines


def _wrap_lines(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    """Whitespace-normalized text (" ".join(text.split())) filled to width, Mailman-guarded."""
    if width <= 0:
        return [first + text]
    return _guard(_fill(text, int(width), first, rest)) or [first.rstrip()]  # a template may pass 60.0


def wrap(text: Any, width: int = WIDTH, indent: str = "") -> str:
    """Fill each paragraph of text to width, continuation lines indented by `indent`."""
    paragraphs = re.split(r"\n\s*\n", str(text).strip())
    return "\n\n".join("\n".join(_wrap_lines(" ".join(p.split()), width, "", indent)) for p in paragraphs)


def field(label: str, value: Any, width: int = WIDTH) -> str:
    """"Where:    Eck 206", wrapped with a hanging indent under the value; "" for no value."""
    if value is None or not str(value).strip():
        return ""
    return _field(str(label), str(value), int(width))


# A talk's fields repeat in each of its messages, and the series' in every message.
@lru_cache(maxsize=1024)
def _field(label: str, value: str, width: int) -> str:
    head = f"{label}:".ljust(LABEL_WIDTH - 1) + " "
    return "\n".join(_wrap_lines(" ".join(value.split()), width, head, " " * len(head)))


def _inline_text(children: Iterable[Token]) -> str:
    out: list[str] = []
    hrefs: list[tuple[str, int]] = []
    for token in children:
        if token.type in ("text", "code_inline", "html_inline"):
            out.append(token.content)
        elif token.type == "softbreak":
            out.append(" ")
        elif token.type == "hardbreak":
            out.append("\n")
        elif token.type == "image":
            out.append(token.content)
        elif token.type == "link_open":
            hrefs.append((str(token.attrGet("href") or ""), len(out)))
        elif token.type == "link_close" and hrefs:
            href, at = hrefs.pop()
            shown = "".join(out[at:]).strip()
            if href and href.removeprefix("mailto:") != shown:
                out.append(f" <{href}>")
    return "".join(out)


# Tokens are large (20 KB for an abstract), so only the recent ones are kept: enough for a talk's
# announcement and reminder, which a pass renders a few dozen messages apart, to share them.
@lru_cache(maxsize=128)
def _parsed(source: str) -> tuple[Token, ...]:
    """Markdown parsed once for both renderings, text and HTML (renderers only read the tokens)."""
    parser = _MARKDOWN if _SETEXT_UNDERLINE.search(source) else _MARKDOWN_WITHOUT_SETEXT
    return tuple(parser.parse(source))


# One abstract is rendered for several parts and kinds, and a pass may send every announcement
# before any reminder: room for the texts of a few thousand talks (a few MB at most).
@lru_cache(maxsize=4096)
def markdown_text(source: str | None, width: int = WIDTH) -> str:
    """Markdown as plain text: paragraphs filled to width, links as "text <url>", lists dashed."""
    if not source:
        return ""
    lines: list[str] = []
    indents: list[str] = []
    ordered: list[bool] = []  # one per open list
    marker = ""
    for token in _parsed(source):
        indent = "".join(indents)
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            ordered.append(kind == "ordered_list_open")
        elif kind in ("bullet_list_close", "ordered_list_close"):
            ordered.pop()
            if not ordered:
                lines.append("")
        elif kind == "list_item_open":
            marker = f"{token.info}. " if ordered[-1] else "- "  # info: the item's number
            indents.append(" " * len(marker))
        elif kind == "list_item_close":
            indents.pop()
        elif kind == "blockquote_open":
            indents.append("> ")
        elif kind == "blockquote_close":
            indents.pop()
        elif kind == "inline":
            first = indent[: len(indent) - len(marker)] + marker if marker else indent
            for number, piece in enumerate(_inline_text(token.children or []).split("\n")):
                lines.extend(_wrap_lines(" ".join(piece.split()), width, first if number == 0 else indent, indent))
            marker = ""
        elif kind in ("paragraph_close", "heading_close") and not token.hidden:
            lines.append(indent.rstrip())
        elif kind in ("fence", "code_block"):
            lines.extend(f"{indent}    {line}".rstrip() for line in token.content.rstrip("\n").split("\n"))
            lines.append("")
        elif kind == "hr":
            lines.extend([indent + "-" * 20, ""])
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
    """Markdown as HTML, with raw HTML in the source escaped, never passed through."""
    if not source:
        return Markup("")
    return Markup(_MARKDOWN.renderer.render(list(_parsed(source)), _MARKDOWN.options, {}))
