"""`check`, `plan`, `log` and `send` on a folder of series (SPEC 8.4): the one-series command run
on each series in turn, its output labelled with the series' folder name, the exit code the worst."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from announcer.commands.show import local_time, log_lines, plan_listing
from announcer.errors import AnnouncerError, ExitCode
from announcer.sources.folder import series_configs, split_talk
from announcer.sources.series import load_series
from announcer.sources.timing import parse_now


@dataclass
class Output:
    """What a command on a folder prints, and its exit code."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    code: int = 0

    def worst(self, code: int) -> None:
        self.code = max(self.code, int(code))


def _configs(folder: Path) -> dict[str, Path]:
    configs = series_configs(folder)
    if not configs:
        raise AnnouncerError(f"{folder}: no series in this folder (a series is a subfolder holding announcer.toml)")
    return configs


def _each(folder: Path, act: Callable[[str, Path, Output], None]) -> Output:
    """Run `act` on every series; a series that fails is one labelled line, and the others go on."""
    out = Output()
    for name, config in _configs(folder).items():
        try:
            act(name, config, out)
        except AnnouncerError as error:
            out.stderr += [f"{name}: {line}" for line in str(error).splitlines()]
            out.worst(error.exit_code)
    return out


def _labelled(name: str, text: str) -> list[str]:
    return [f"{name}: {line}" for line in text.splitlines()]


def check_folder(folder: Path, now_text: str | None) -> Output:
    """`check` on every series: its problems (`path:line: ...`, naming its folder) and a summary line each."""
    from announcer.commands.check import check_series

    clean: list[str] = []

    def act(name: str, config: Path, out: Output) -> None:
        report = check_series(str(config), now_text)
        out.stderr += [str(problem) for problem in report.problems]
        out.stdout.append(f"{name}: {report.summary}")
        if report.errors:
            out.worst(ExitCode.BAD_INPUT)
        else:
            clean.append(name)

    out = _each(folder, act)
    failed = [name for name in _configs(folder) if name not in clean]   # with errors, or stopped by one
    out.stdout.append(f"{len(clean) + len(failed)} series: {len(clean)} without errors"
                      + (f", {len(failed)} with errors ({', '.join(failed)})" if failed else ""))
    return out


def plan_folder(folder: Path, now_text: str | None, include_all: bool, as_json: bool) -> Output:
    """`plan` on every series: one table (or JSON list) in due order, each row naming its series."""
    now = parse_now(now_text)
    rows: list[tuple] = []   # (when, series, talk, kind, state, shown when, sent)
    notes: list[str] = []

    def act(name: str, config: Path, out: Output) -> None:
        loaded = load_series(str(config))
        plan, listed, sent, series_notes = plan_listing(loaded, now, include_all)
        zone = loaded.config.series.timezone
        out.stderr += [f"{name}: warning: {warning}" for warning in plan.warnings]
        notes.extend(f"{name}: {note}" for note in series_notes)
        for m in listed:
            when = sent.get(m.key, m.due)
            rows.append((when, name, m.talk_id, m.kind, m.state, local_time(when, loaded.config),
                         m.due.astimezone(zone).isoformat(),
                         sent[m.key].astimezone(zone).isoformat() if m.key in sent else None))

    out = _each(folder, act)
    rows.sort(key=lambda r: r[:3])
    if as_json:
        data = [{"series": r[1], "talk": r[2], "kind": r[3], "due": r[6], "state": r[4]}
                | ({"sent": r[7]} if r[7] else {}) for r in rows]
        out.stdout.append(json.dumps(data, indent=2))
        out.stderr += notes
        return out
    if not rows:
        out.stdout.append("nothing planned" + ("" if include_all else " (--all shows past messages)"))
        return out
    widths = [max(len(title), *(len(r[i]) for r in rows)) for i, title in ((1, "SERIES"), (2, "TALK"), (3, "KIND"))]
    out.stdout.append(f"{'SERIES':<{widths[0]}}  {'DUE (series zone)':<24}  {'TALK':<{widths[1]}}  "
                      f"{'KIND':<{widths[2]}}  STATE")
    out.stdout += [f"{r[1]:<{widths[0]}}  {r[5]:<24}  {r[2]:<{widths[1]}}  {r[3]:<{widths[2]}}  {r[4]}" for r in rows]
    out.stdout += [""] * bool(notes) + notes
    return out


def log_folder(folder: Path, talk: str | None) -> Output:
    """`log` on every series (or on `SERIES/TALK`), each line beginning with its series."""
    configs = _configs(folder)
    only = split_talk(folder, configs, talk) if talk else None

    width = max(map(len, configs))

    def act(name: str, config: Path, out: Output) -> None:
        if only is None or only[0] == name:
            out.stdout += [f"{name:<{width}}  {line}" for line in log_lines(str(config), only and only[1]).splitlines()]

    return _each(folder, act)


def send_folder(folder: Path, talk: str | None, kind: str | None, **options) -> Output:
    """`send --due` (or `--failed`) on every series, or `send SERIES/TALK --kind KIND` on one;
    every line of output labelled with its series."""
    from announcer.commands.send import send_command

    configs = _configs(folder)
    only = split_talk(folder, configs, talk) if talk else None

    def act(name: str, config: Path, out: Output) -> None:
        if only is not None and only[0] != name:
            return
        text, code, errors = send_command(str(config), only and only[1], kind, **options)
        out.stdout += _labelled(name, text)
        out.stderr += [f"{name}: {line}" for line in errors]
        out.worst(code)

    return _each(folder, act)
