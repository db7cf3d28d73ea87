"""The README says what a user sees: its template reference and its Quick start are checked here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jinja2

from announcer.compose.render import _environment

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
SCRIPTS = Path(sys.executable).parent   # the venv's bin, where `announcer` is installed


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


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of one language in a piece of Markdown."""
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def console_steps(block: str) -> list[tuple[str, str]]:
    """The commands of a console block ("$ " lines) and the output shown under each."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line + "\n")
    return [(command, "".join(output)) for command, output in steps]


def shell(command: str, cwd: Path, tmp_path: Path) -> tuple[str, int, Path]:
    """Run a command line as a user types it, with the venv on PATH: its output (stdout and stderr
    as a terminal shows them), its exit code, and the folder it leaves the shell in (after a cd)."""
    env = {k: v for k, v in os.environ.items() if k != "ANNOUNCER_CONFIG"}
    env["PATH"] = f"{SCRIPTS}{os.pathsep}{env.get('PATH', '')}"
    where = tmp_path / ".cwd"
    script = f'{command}\nstatus=$?\npwd > "{where}"\nexit $status\n'
    done = subprocess.run(["sh", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
    return done.stdout, done.returncode, Path(where.read_text().strip())


def test_the_quick_start_is_what_a_user_sees_whatever_the_day(tmp_path):
    [block] = blocks(section("Quick start"), "console")
    steps = console_steps(block)
    assert len(steps) >= 6
    home = tmp_path / "home"
    home.mkdir()
    cwd = home
    for command, shown in steps:
        assert "announcer" not in command or "--now" in command or command.split()[1] in ("init", "log"), (
            f"{command!r}: its output depends on the day it runs; give it --now")
        output, code, cwd = shell(command, cwd, tmp_path)
        assert (command, code, output) == (command, 0, shown)


def test_the_quick_starts_sample_text_is_the_example_talks_announcement(tmp_path):
    [sample] = blocks(section("Quick start"), "text")
    shell("announcer init series", tmp_path, tmp_path)
    output, code, _ = shell("announcer preview 2027-02-21-example --kind announcement", tmp_path / "series", tmp_path)
    assert code == 0, output
    headers, text = output.split("\n\n", 1)
    [subject] = [line for line in headers.splitlines() if line.startswith("Subject: ")]
    assert f"{subject}\n\n{text}" == sample
