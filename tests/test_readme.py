"""The README says what a user sees: its template reference and its Quick start are checked here."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from announcer.render import _environment

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's text under a heading, up to the next heading of the same or a higher level."""
    heading = re.search(rf"^(#+) {re.escape(title)}$", README, re.MULTILINE)
    assert heading, f"no section {title!r} in the README"
    body = README[heading.end():]
    end = re.search(rf"^#{{1,{len(heading[1])}}} ", body, re.MULTILINE)
    return body[:end.start()] if end else body


def test_the_readme_lists_every_filter_and_function_templates_can_use():
    templates = section("Templates")
    environment = _environment(None)
    jinjas = jinja2.Environment()
    ours = (set(environment.filters) - set(jinjas.filters)) | (set(environment.globals) - set(jinjas.globals))
    assert ours, "the environment should add filters of its own"
    listed = set(re.findall(r"[`|, ](\w+)", templates))
    assert sorted(ours - listed) == []
