"""Subject, text and HTML of a message, from Jinja templates (built-ins, overridable file by file)."""

from __future__ import annotations

import traceback
import types
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

from announcer import __version__
from announcer.compose.fill import WIDTH, field, paragraphs, wrap
from announcer.compose.markdown import markdown_html, markdown_text, one_line
from announcer.compose.wording import (
    clock,
    dates,
    describe_changes,
    elsewhere,
    long_date,
    short_date,
    span,
    when,
    when_short,
    zone_name,
)
from announcer.errors import InputError, Problem
from announcer.plan import Change
from announcer.sources.config import Config
from announcer.sources.talk import Talk

BUILTIN_KINDS = ("announcement", "reminder", "update", "cancellation")
PARTS = ("subject", "txt", "html")
COURSE = "course"  # the templates of a course's one announcement


@dataclass(frozen=True)
class Rendered:
    """The three rendered parts of one message."""

    subject: str
    text: str
    html: str


# ---- templates ----------------------------------------------------------------------------

class _Loader(jinja2.BaseLoader):
    """A template from templates_dir where a file of that name exists there, else the built-in.

    It remembers the file of every template it loaded: in a traceback, Jinja gives the frames
    of a template that file's name and the template's line (see _template_place).
    """

    def __init__(self, override_dir: Path | None):
        self.override_dir = override_dir
        self.files: set[str] = set()

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        parts = split_template_path(template)
        override = self.override_dir.joinpath(*parts) if self.override_dir else None
        if override is not None and override.is_file():
            mtime = override.stat().st_mtime_ns
            self.files.add(str(override))
            return _read(override), str(override), lambda: _mtime(override) == mtime
        builtin = resources.files("announcer.templates").joinpath(*parts)
        if not builtin.is_file():
            raise jinja2.TemplateNotFound(template)
        self.files.add(str(builtin))
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


# ---- Jinja: the sandbox (SPEC 6), tuned for speed (SPEC 7) -------------------------------

_SAFE_ATTRIBUTES: dict[tuple[type, str], bool] = {}   # (type, attribute name) -> may a template read it


class _Environment(ImmutableSandboxedEnvironment):
    """Templates are organisers' text, not code (SPEC 6): Jinja's immutable sandbox, which refuses
    attributes that start with "_" (lipsum.__globals__, __class__.__mro__, through attr() and
    str.format too), Python internals and changes to lists and dicts. Two more refusals: the
    attributes of file paths (talk.path.read_text() would read any file the process can) and of
    modules. A refused attribute is a SecurityError, reported at the template's path:line.

    Templates get their globals as a plain dict, copied on every render in a fraction of the
    time Jinja's default takes to copy its ChainMap. A ChainMap would show a template later changes
    to the environment's globals; ours are all set before the first template loads."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(value, types.ModuleType):
            return False
        # Jinja's rules and ours look only at the object's type and the attribute's name: each pair
        # is judged once (a render of the built-in templates reads some 50 attributes, and judging
        # each read took as long as the rest of the render).
        key = (type(obj), attr)
        safe = _SAFE_ATTRIBUTES.get(key)
        if safe is None:
            safe = _SAFE_ATTRIBUTES[key] = (not isinstance(obj, (PurePath, types.ModuleType))
                                            and super().is_safe_attribute(obj, attr, value))
        return safe

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
        super().__init__(pattern=f"__announcer_{__version__}_sandboxed_%s.cache")

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


@jinja2.pass_context
def _elsewhere(context: jinja2.runtime.Context, value: Talk | datetime) -> str:
    """`talk|elsewhere` (or a time's): its start in the series' `also_show` zones ("" for none)."""
    start = value.start.astimezone(value.timezone) if isinstance(value, Talk) else value
    return elsewhere(start, context["series"].also_show)


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
                       markdown_html=markdown_html, one_line=one_line, paragraphs=paragraphs,
                       elsewhere=_elsewhere, dates=dates)
    for gadget in ("lipsum", "cycler", "joiner"):  # no message needs them; escapes start from them
        del env.globals[gadget]
    env.globals.update(field=field, wrap=wrap, span=span, width=WIDTH)
    return env


def _one_blank_line_at_most(text: str) -> str:
    """Runs of blank lines (which left-out template blocks leave) made one: re.sub(r"\n{3,}",
    "\n\n", text), which takes three times as long (the regex looks at every character)."""
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def _template_place(error: BaseException, template_files: set[str]) -> tuple[str, int] | None:
    """The innermost template file and line in an error's traceback (Jinja rewrites them in)."""
    place = None
    for frame, line in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_filename in template_files:
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
        # A course announced in one post has templates of its own: course.*.j2 (SPEC 8.5).
        name = COURSE if talk.sessions and kind == "announcement" else kind
        subject = " ".join(self._render(f"{name}.subject.j2", kind, context).split())
        text = self._render(f"{name}.txt.j2", kind, context)
        text = _one_blank_line_at_most("\n".join(map(str.rstrip, text.splitlines())))
        html = self._render(f"{name}.html.j2", kind, context)
        return Rendered(subject=subject, text=text.strip("\n") + "\n", html=html)

    def check(self, kinds: Iterable[str]) -> list[Problem]:
        """Load and compile every template of these kinds; the problems found."""
        problems: list[Problem] = []
        names = {kind: kind for kind in kinds}
        if "announcement" in names:  # and a course post's templates
            names[COURSE] = "announcement"
        for name, kind in names.items():
            for part in PARTS:
                try:
                    self._template(f"{name}.{part}.j2", kind)
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
            place = _template_place(error, self.env.loader.files)
            if place is None:
                raise  # not raised while rendering a template: a bug in announcer
            detail = str(error) if isinstance(error, jinja2.TemplateError) else f"{type(error).__name__}: {error}"
            raise InputError([Problem(place[0], place[1], f"template error: {detail}")]) from None

    # ---- pages (publish/site.py): the same loader, environment and error places as messages ----

    def render_page(self, name: str, context: dict[str, Any]) -> str:
        """One page template ("site/index.html.j2"): built in, overridable from templates_dir/site/."""
        return self._render(name, "site", context)
