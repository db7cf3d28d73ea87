"""Text for message bodies: lines filled to a width, never starting with a Mailman command word."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from announcer.compose.mailman import command_word

WIDTH = 72
LABEL_WIDTH = 10  # "Speakers: " is the longest label of the text templates


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


def wrap_lines(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    """Whitespace-normalized text (" ".join(text.split())) filled to width, Mailman-guarded."""
    if width <= 0:
        return [first + text]
    return _guard(_fill(text, int(width), first, rest)) or [first.rstrip()]  # a template may pass 60.0


def paragraphs(text: Any) -> list[str]:
    """The paragraphs of text (parted by blank lines), each on one line."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", str(text).strip()) if p.strip()]


def wrap(text: Any, width: int = WIDTH, indent: str = "") -> str:
    """Fill each paragraph of text to width, continuation lines indented by `indent`."""
    return "\n\n".join("\n".join(wrap_lines(p, width, "", indent)) for p in paragraphs(text) or [""])


def field(label: str, value: Any, width: int = WIDTH) -> str:
    """"Where:    Eck 206", wrapped with a hanging indent under the value; "" for no value.

    Each paragraph of the value (a course's notes after a session's) starts a line of its own.
    """
    if value is None or not str(value).strip():
        return ""
    return _field(str(label), str(value), int(width))


# A talk's fields repeat in each of its messages, and the series' in every message.
@lru_cache(maxsize=1024)
def _field(label: str, value: str, width: int) -> str:
    head = f"{label}:".ljust(LABEL_WIDTH - 1) + " "
    indent = " " * len(head)
    return "\n".join(line for number, paragraph in enumerate(paragraphs(value))
                     for line in wrap_lines(paragraph, width, indent if number else head, indent))
