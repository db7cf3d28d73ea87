"""The command line: parse options, call one function, turn errors into exit codes.

Heavy modules are imported inside the commands so that `announcer --help` stays fast.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

from announcer import __version__
from announcer.errors import AnnouncerError, ExitCode, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Announce seminar talks to a mailing list: on time, exactly once.")
state: dict[str, Optional[str]] = {"config": None}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"announcer {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    config: Optional[str] = typer.Option(None, "--config", metavar="PATH",
                                         help="announcer.toml (default: $ANNOUNCER_CONFIG, then ./announcer.toml)"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Announce seminar talks to a mailing list: on time, exactly once."""
    state["config"] = config


def fail(error: AnnouncerError) -> typer.Exit:
    """Print an error as its one line(s) on stderr and give the exit to raise."""
    typer.echo(str(error), err=True)
    return typer.Exit(int(error.exit_code))


def warn(lines: list) -> None:
    for line in lines:
        typer.echo(str(line) if str(line).split(":", 1)[0] else f"warning: {line}", err=True)


@app.command()
def init(directory: Path = typer.Argument(Path("."), metavar="[DIR]")) -> None:
    """Write a commented announcer.toml, an example talk and a templates/ folder."""
    from announcer.skeleton import write_skeleton

    try:
        for path in write_skeleton(directory):
            typer.echo(f"wrote {path}")
    except AnnouncerError as error:
        raise fail(error)


@app.command()
def check(now: Optional[str] = typer.Option(None, help="Act as if it were this ISO 8601 time.")) -> None:
    """Load config, talks and templates, render every planned message; print every problem."""
    from announcer.check import check_series

    try:
        report = check_series(state["config"], now)
    except AnnouncerError as error:
        raise fail(error)
    for problem in report.problems:
        typer.echo(str(problem), err=True)
    typer.echo(report.summary)
    if report.errors:
        raise typer.Exit(ExitCode.BAD_INPUT)


@app.command()
def plan(
    all_: bool = typer.Option(False, "--all", help="Include messages already sent, missed or skipped."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON list of {talk, kind, due, state}."),
    now: Optional[str] = typer.Option(None, help="Act as if it were this ISO 8601 time."),
) -> None:
    """List the upcoming messages: due time, talk, kind and state."""
    from announcer.series import plan_rows

    try:
        table, warnings = plan_rows(state["config"], now, include_all=all_, as_json=json_)
    except AnnouncerError as error:
        raise fail(error)
    warn(warnings)
    typer.echo(table)


@app.command()
def preview(
    talk: Optional[str] = typer.Argument(None, help="Only this talk's messages."),
    kind: Optional[str] = typer.Option(None, help="Only this kind (announcement, reminder, ...)."),
    out: Optional[Path] = typer.Option(None, metavar="DIR", help="Write TALK.KIND.eml files here."),
    now: Optional[str] = typer.Option(None, help="Act as if it were this ISO 8601 time."),
) -> None:
    """Render messages exactly as they would be sent, without sending or recording anything."""
    from announcer.series import preview_messages

    try:
        output, warnings, errors = preview_messages(state["config"], talk, kind, out, now)
    except AnnouncerError as error:
        raise fail(error)
    warn(warnings)
    typer.echo(output, nl=False)
    for error_line in errors:
        typer.echo(error_line, err=True)
    if errors:
        raise typer.Exit(ExitCode.BAD_INPUT)


@app.command()
def send(
    talk: Optional[str] = typer.Argument(None, help="The talk to send a message for."),
    kind: Optional[str] = typer.Option(None, help="Which message of the talk (with TALK)."),
    due: bool = typer.Option(False, "--due", help="Send every message whose time has come."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be sent; send and record nothing."),
    force: bool = typer.Option(False, "--force", help="Send again even if it was sent (a fresh Message-ID)."),
    now: Optional[str] = typer.Option(None, help="Act as if it were this ISO 8601 time."),
) -> None:
    """Send one message now (TALK --kind KIND), or every due one (--due)."""
    from announcer.series import send_command

    try:
        if due == bool(talk):
            raise UsageError("give either TALK --kind KIND or --due")
        if talk and not kind:
            raise UsageError("TALK needs --kind KIND (e.g. --kind announcement)")
        if due and (kind or force):
            raise UsageError("--due takes no --kind or --force")
        if now and not due and not dry_run:
            raise UsageError("--now goes with --due or --dry-run")
        output, code = send_command(state["config"], talk, kind, dry_run=dry_run, force=force, now_text=now)
    except AnnouncerError as error:
        raise fail(error)
    typer.echo(output, nl=False)
    raise typer.Exit(code)


@app.command()
def daemon(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every pass, not only sends.")) -> None:
    """Run until stopped, sending each message on time."""
    from announcer.daemon import run_daemon

    try:
        code = run_daemon(state["config"], verbose=verbose)
    except AnnouncerError as error:
        raise fail(error)
    raise typer.Exit(code)


@app.command("import")
def import_(
    sources: list[str] = typer.Argument(..., metavar="SOURCE...",
                                        help="An .ics file, an http(s):// or webcal:// feed, a page with front matter, or a folder."),
    into: Optional[Path] = typer.Option(None, metavar="DIR", help="Write here instead of the series' talks folder."),
    force: bool = typer.Option(False, "--force", help="Replace files that are not from the same source."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the talk files instead of writing them."),
) -> None:
    """Turn a calendar (ICS) or a Hugo/Jekyll site's pages into talk files; report what had no place."""
    from announcer.importers import import_talks

    try:
        report = import_talks(state["config"], sources, into, force=force, dry_run=dry_run)
    except AnnouncerError as error:
        raise fail(error)
    for planned in report.files:
        if dry_run and planned.state != "unchanged":
            typer.echo(f"# {planned.shown} ({planned.state})\n{planned.text}")
        elif planned.state != "unchanged":
            typer.echo(f"{'wrote' if planned.state == 'new' else 'updated'} {planned.shown}")
    for note in report.notes:
        typer.echo(str(note), err=True)
    typer.echo(report.summary)


@app.command()
def log(talk: Optional[str] = typer.Argument(None, help="Only this talk.")) -> None:
    """The ledger's history: when each message was sent, its Message-ID, or the error."""
    from announcer.series import log_lines

    try:
        typer.echo(log_lines(state["config"], talk), nl=False)
    except AnnouncerError as error:
        raise fail(error)


def main() -> None:
    """Entry point of the `announcer` script."""
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        exit_now(ExitCode.INTERRUPTED)
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)


def exit_now(code: int | str | None) -> None:
    """Exit as `sys.exit(code)` does, without tearing the interpreter down when that is safe.

    Teardown frees, one by one, every object of every module a command imported: 20 ms after
    `--help`, 60-100 ms after `check` or `preview` of a thousand talks (SPEC 7). What it does that
    anyone can see is done here: exit handlers run and the standard streams are flushed. A thread
    still running would be waited for, and a message (not a number) printed: those exit the usual way.
    """
    code = 0 if code is None else code
    if not isinstance(code, int) or threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # what sys.exit runs too (logging's flush, multiprocessing's clean-up)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started with that stream closed
                stream.flush()
    except (OSError, ValueError):  # a closed pipe or file: let the usual exit report it
        sys.exit(code)
    os._exit(code)
