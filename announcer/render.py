"""Subject, text and HTML of a message, from Jinja templates (built-ins, overridable file by file)."""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

import jinja2
from jinja2.loaders import split_template_path
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from announcer.config import Config
from announcer.errors import InputError, Problem
from announcer.message import command_word
from announcer.plan import Change
from announcer.talks import Talk

WIDTH = 72
LABEL_WIDTH = 10  # "Speakers: " is the longest label of the text templates
BUILTIN_KINDS = ("announcement", "reminder", "update", "cancellation")
PARTS = ("subject", "txt", "html")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
# Raw HTML off (SPEC 2.3): tags in an abstract come out as text; javascript: links stay text.
# With html off the two HTML rules match nothing, so they are not run at all.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable(["html_block", "html_inline"])
# A setext heading is a paragraph underlined with a line of "=" or "-". Looking for one reads
# every paragraph a second time, a fifth of the parse; a source in which no line ends with "=" or
# "-" (spaces and tabs after it aside) cannot have one, and parses to the same tokens without
# that rule (tests/test_render.py).
_MARKDOWN_WITHOUT_SETEXT = MarkdownIt("commonmark", {"html": False}).disable(["html_block", "html_inline", "lheading"])
_SETEXT_UNDERLINE = re.compile(r"[-=][ \t]*(?:\r|\n|\Z)")
_CHANGE_WORDING = {  # field -> (label in the text, short form for the subject)
    "location": ("Room changed", "new room"),
    "online_url": ("Online link changed", "new online link"),
    "status": ("Status changed", "new status"),
}


@dataclass(frozen=True)
class Rendered:
    """The three rendered parts of one message."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class ChangeView:
    """One change of a talk, worded for people: "Room changed: Eck 206 → Eck 203"."""

    field: str
    label: str
    short: str
    old: str
    new: str


# ---- times, in the talk's own zone -------------------------------------------------------

def long_date(moment: datetime) -> str:
    """"Tuesday 21 February 2027" (English whatever the locale)."""
    return f"{WEEKDAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def short_date(moment: datetime) -> str:
    """"Tue 21 Feb"."""
    return f"{WEEKDAYS[moment.weekday()][:3]} {moment.day} {MONTHS[moment.month - 1][:3]}"


def clock(moment: datetime) -> str:
    """"2:00 pm"."""
    return f"{moment.hour % 12 or 12}:{moment.minute:02d} {'am' if moment.hour < 12 else 'pm'}"


def zone_name(moment: datetime) -> str:
    """The zone's abbreviation at that moment ("EST", "CET"), or "UTC+04" where it has none."""
    name = moment.tzname() or ""
    return f"UTC{name}" if name[:1] in "+-" else name


def span(start: datetime, end: datetime) -> str:
    """"Tuesday 21 February 2027, 2:00-3:00 pm EST", spelling out whatever differs at the end."""
    if start.date() != end.date():
        return f"{long_date(start)}, {clock(start)} {zone_name(start)} - {long_date(end)}, {clock(end)} {zone_name(end)}"
    if zone_name(start) != zone_name(end):  # a talk across a clock change
        return f"{long_date(start)}, {clock(start)} {zone_name(start)} - {clock(end)} {zone_name(end)}"
    if (start.hour < 12) == (end.hour < 12):
        return f"{long_date(start)}, {clock(start)[:-3]}-{clock(end)} {zone_name(end)}"
    return f"{long_date(start)}, {clock(start)}-{clock(end)} {zone_name(end)}"


def when(talk: Talk) -> str:
    """The talk's date, times and zone, in its own zone."""
    return span(talk.start.astimezone(talk.timezone), talk.end.astimezone(talk.timezone))


def when_short(talk: Talk) -> str:
    """"Tue 21 Feb, 2:00 pm", for subjects."""
    start = talk.start.astimezone(talk.timezone)
    return f"{short_date(start)}, {clock(start)}"


# ---- plain text ---------------------------------------------------------------------------

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
    time with str.rfind rather than a word at a time (tests/test_render.py compares them). A word
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


# ---- changes ------------------------------------------------------------------------------

def _instant(value: str | None, fallback: datetime, talk: Talk) -> datetime:
    try:
        return datetime.fromisoformat(value).astimezone(talk.timezone) if value else fallback
    except ValueError:
        return fallback


def describe_changes(talk: Talk, changes: Iterable[Change]) -> list[ChangeView]:
    """The plan's changes worded for people, a moved start and end as one "Time changed"."""
    changes = list(changes)
    by_field = {c.field: c for c in changes}
    views: list[ChangeView] = []
    if "start" in by_field or "end" in by_field:
        start, end = talk.start.astimezone(talk.timezone), talk.end.astimezone(talk.timezone)
        old_start = _instant(getattr(by_field.get("start"), "old", None), start, talk)
        old_end = _instant(getattr(by_field.get("end"), "old", None), end, talk)
        views.append(ChangeView("time", "Time changed", "new time", span(old_start, old_end), when(talk)))
    for change in changes:
        if change.field in ("start", "end"):
            continue
        words = change.field.replace("_", " ")
        label, short = _CHANGE_WORDING.get(change.field, (f"{words.capitalize()} changed", f"new {words}"))
        views.append(ChangeView(change.field, label, short, change.old or "none", change.new or "none"))
    return views


# ---- templates ----------------------------------------------------------------------------

class _Loader(jinja2.BaseLoader):
    """A template from templates_dir where a file of that name exists there, else the built-in."""

    def __init__(self, override_dir: Path | None):
        self.override_dir = override_dir

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        parts = split_template_path(template)
        override = self.override_dir.joinpath(*parts) if self.override_dir else None
        if override is not None and override.is_file():
            mtime = override.stat().st_mtime_ns
            return _read(override), str(override), lambda: _mtime(override) == mtime
        builtin = resources.files("announcer.templates").joinpath(*parts)
        if not builtin.is_file():
            raise jinja2.TemplateNotFound(template)
        # A built-in goes stale as soon as an override of the same name appears.
        return builtin.read_text(encoding="utf-8"), str(builtin), lambda: not (override and override.is_file())


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError([Problem(path, None, f"not UTF-8 text (byte {error.start}); save the template as UTF-8")])


class _Environment(jinja2.Environment):
    """Templates get their globals as a plain dict, copied on every render in a fraction of the
    time Jinja's default takes to copy its ChainMap. A ChainMap would show a template later changes
    to the environment's globals; ours are all set before the first template loads."""

    def make_globals(self, d: dict[str, Any] | None) -> dict[str, Any]:
        return {**self.globals, **(d or {})}


@lru_cache(maxsize=32)
def _environment(templates_dir: Path | None) -> jinja2.Environment:
    env = _Environment(
        loader=_Loader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
    )
    env.filters.update(when=when, when_short=when_short, long_date=long_date, short_date=short_date,
                       clock=clock, zone_name=zone_name, wrap=wrap, markdown_text=markdown_text,
                       markdown_html=markdown_html, one_line=one_line)
    env.globals.update(field=field, wrap=wrap, span=span, width=WIDTH)
    return env


def _template_place(error: BaseException) -> tuple[str, int] | None:
    """The innermost template file and line in an error's traceback (Jinja rewrites them in)."""
    place = None
    for frame, line in traceback.walk_tb(error.__traceback__):
        if "__jinja_exception__" in frame.f_globals or frame.f_code.co_filename.endswith(".j2"):
            place = (frame.f_code.co_filename, line)
    return place


class Renderer:
    """Renders a series' messages; renderers of one series share a Jinja environment, so its
    templates parse once (and again only when a file changes)."""

    def __init__(self, config: Config):
        self.config = config
        self.series = config.series
        self.env = _environment(config.series.templates_dir)

    def render(self, talk: Talk, kind: str, *, changes: Iterable[Change] = (), sequence: int = 0) -> Rendered:
        """Subject, text and HTML of one message of this kind about this talk."""
        context = {"talk": talk, "series": self.series, "kind": kind, "sequence": sequence,
                   "changes": describe_changes(talk, changes)}
        subject = " ".join(self._render(f"{kind}.subject.j2", kind, context).split())
        text = self._render(f"{kind}.txt.j2", kind, context)
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines()))
        html = self._render(f"{kind}.html.j2", kind, context)
        return Rendered(subject=subject, text=text.strip("\n") + "\n", html=html)

    def check(self, kinds: Iterable[str]) -> list[Problem]:
        """Load and compile every template of these kinds; the problems found."""
        problems: list[Problem] = []
        for kind in kinds:
            for part in PARTS:
                try:
                    self._template(f"{kind}.{part}.j2", kind)
                except InputError as error:
                    problems.extend(error.problems)
        return problems

    def _template(self, name: str, kind: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound:
            folder = self.series.templates_dir
            where = f"add {name} to {folder}" if folder else f'set [series] templates_dir and add {name} there'
            raise InputError([Problem(folder or self.config.path, None,
                                      f'no template "{name}" for messages of kind "{kind}": {where}')]) from None
        except jinja2.TemplateSyntaxError as error:
            raise InputError([Problem(error.filename or name, error.lineno,
                                      f"template syntax error: {error.message}")]) from None

    def _render(self, name: str, kind: str, context: dict[str, Any]) -> str:
        template = self._template(name, kind)
        try:
            return template.render(context)
        except InputError:
            raise
        except jinja2.TemplateSyntaxError as error:  # in an included template
            raise InputError([Problem(error.filename or name, error.lineno,
                                      f"template syntax error: {error.message}")]) from None
        except Exception as error:  # also a helper called wrongly, e.g. {{ talk.title|when }}
            place = _template_place(error)
            if place is None:
                raise  # not raised while rendering a template: a bug in announcer
            detail = str(error) if isinstance(error, jinja2.TemplateError) else f"{type(error).__name__}: {error}"
            raise InputError([Problem(place[0], place[1], f"template error: {detail}")]) from None
