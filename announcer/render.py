"""Subject, text and HTML of a message, from Jinja templates (built-ins, overridable file by file)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

import jinja2
from jinja2.loaders import split_template_path

from announcer import __version__
from announcer.config import Config
from announcer.errors import InputError, Problem
from announcer.markdown import markdown_html, markdown_text, one_line
from announcer.plan import Change
from announcer.talks import Talk
from announcer.text import WIDTH, field, wrap

BUILTIN_KINDS = ("announcement", "reminder", "update", "cancellation")
PARTS = ("subject", "txt", "html")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
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


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between runs, in Jinja's own per-user folder of the temp directory.

    Compiling the built-in templates costs every process (and every worker of `check` and
    `preview`) some 50 ms. A template whose source changed is compiled again (the cache checks a
    checksum of it); the file names carry announcer's version, as the bytecode also depends on
    how this module sets Jinja up. A cache that cannot be written (its folder cleaned away, a
    full disk) is skipped: the template is compiled, as without one.
    """

    def __init__(self) -> None:
        super().__init__(pattern=f"__announcer_{__version__}_%s.cache")

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """The bytecode cache, or None where Jinja finds its folder unsafe to use."""
    try:
        return _BytecodeCache()
    except (RuntimeError, OSError):
        return None


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
        bytecode_cache=_bytecode_cache(),
    )
    env.filters.update(when=when, when_short=when_short, long_date=long_date, short_date=short_date,
                       clock=clock, zone_name=zone_name, wrap=wrap, markdown_text=markdown_text,
                       markdown_html=markdown_html, one_line=one_line)
    env.globals.update(field=field, wrap=wrap, span=span, width=WIDTH)
    return env


def _one_blank_line_at_most(text: str) -> str:
    """Runs of blank lines (which left-out template blocks leave) made one: re.sub(r"\n{3,}",
    "\n\n", text), which takes three times as long (the regex looks at every character)."""
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


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
        text = _one_blank_line_at_most("\n".join(map(str.rstrip, text.splitlines())))
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
            line = next((rule.line for rule in self.config.messages if rule.kind == kind), None)
            raise InputError([Problem(self.config.path if line else folder or self.config.path, line,
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
