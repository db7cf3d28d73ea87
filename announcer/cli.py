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
from typer.core import TyperGroup

from announcer import __version__
from announcer.errors import AnnouncerError, ExitCode, Problem, UsageError


class _Commands(TyperGroup):
    """The commands, with the product's errors caught here once: one line on stderr, the named exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AnnouncerError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(int(error.exit_code)) from None


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
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
                                         help="announcer.toml, or a folder of series folders (default: $ANNOUNCER_CONFIG, then ./announcer.toml)"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Announce seminar talks to a mailing list: on time, exactly once."""
    state["config"] = config


def _series_folder() -> Optional[Path]:
    """The folder of series `--config` names (SPEC 8.4), or None for one series."""
    from announcer.sources.folder import series_folder

    return series_folder(state["config"])


def _print_folder(output) -> None:
    """A folder command's output (announcer.commands.many.Output): stdout, stderr, the worst exit code."""
    for line in output.stdout:
        typer.echo(line)
    for line in output.stderr:
        typer.echo(line, err=True)
    raise typer.Exit(output.code)


def warn(warnings: list[str | Problem]) -> None:
    """Print warnings on stderr: a problem with its place (`path:line: warning: ...`), others as `warning: ...`."""
    for warning in warnings:
        typer.echo(str(warning) if isinstance(warning, Problem) else f"warning: {warning}", err=True)


@app.command()
def init(directory: Path = typer.Argument(Path("."), metavar="[DIR]")) -> None:
    """Write a commented announcer.toml, an example talk and a templates/ folder."""
    from announcer.skeleton import write_skeleton

    for path in write_skeleton(directory):
        typer.echo(f"wrote {path}")


@app.command()
def check(now: Optional[str] = typer.Option(None, help="Act as if it were this ISO 8601 time.")) -> None:
    """Load config, talks and templates, render every planned message; print every problem."""
    from announcer.commands.check import check_series

    if folder := _series_folder():
        from announcer.commands.many import check_folder

        _print_folder(check_folder(folder, now))
    report = check_series(state["config"], now)
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
    from announcer.commands.show import plan_rows

    if folder := _series_folder():
        from announcer.commands.many import plan_folder

        _print_folder(plan_folder(folder, now, include_all=all_, as_json=json_))
    table, warnings = plan_rows(state["config"], now, include_all=all_, as_json=json_)
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
    from announcer.commands.preview import preview_messages

    output, warnings, errors = preview_messages(state["config"], talk, kind, out, now)
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
    catch_up: bool = typer.Option(False, "--catch-up", help="With --due: also send held messages (due before "
                                                             "the ledger was created) whose talk has not started."),
    failed: bool = typer.Option(False, "--failed", help="Send again every failed message whose talk has not started."),
    to: Optional[str] = typer.Option(None, "--to", metavar="ADDRESS",
                                     help="A test send to ADDRESS only: [TEST] subject, nothing recorded."),
) -> None:
    """Send one message now (TALK --kind KIND), every due one (--due), or the failed ones (--failed)."""
    from announcer.commands.send import send_command

    if to and (failed or force or dry_run):
        raise UsageError("--to goes with TALK --kind KIND or --due (a test send), without --failed, --force or --dry-run")
    if due + bool(talk) + failed != 1:
        raise UsageError("give either TALK --kind KIND, --due or --failed")
    if talk and not kind:
        raise UsageError("TALK needs --kind KIND (e.g. --kind announcement)")
    if (due or failed) and (kind or force):
        raise UsageError("--due and --failed take no --kind or --force")
    if catch_up and not due:
        raise UsageError("--catch-up goes with --due")
    if now and not (due or failed) and not dry_run and not to:
        raise UsageError("--now goes with --due, --failed or --dry-run")
    if folder := _series_folder():
        from announcer.commands.many import send_folder

        _print_folder(send_folder(folder, talk, kind, dry_run=dry_run, force=force, now_text=now,
                                  catch_up=catch_up, failed=failed, test_to=to))
    output, code, errors = send_command(state["config"], talk, kind, dry_run=dry_run, force=force,
                                        now_text=now, catch_up=catch_up, failed=failed, test_to=to)
    typer.echo(output, nl=False)
    for line in errors:
        typer.echo(line, err=True)
    raise typer.Exit(code)


auth = typer.Typer(cls=_Commands, no_args_is_help=True, help="Sign in to Microsoft 365 or Google (OAuth2).")
app.add_typer(auth, name="auth")


@auth.command("login")
def auth_login() -> None:
    """Sign in once (device code) and keep a refreshable token beside the ledger."""
    from announcer.commands.auth import auth_login as sign_in

    typer.echo(sign_in(state["config"], lambda line: typer.echo(line, err=True)))


@app.command()
def daemon(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every pass, not only sends.")) -> None:
    """Run until stopped, sending each message on time."""
    from announcer.run.daemon import run_daemon

    if folder := _series_folder():
        from announcer.run.many import run_folder_daemon

        raise typer.Exit(run_folder_daemon(folder, verbose=verbose))
    code = run_daemon(state["config"], verbose=verbose)
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

    report = import_talks(state["config"], sources, into, force=force, dry_run=dry_run)
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
    from announcer.commands.show import log_lines

    if folder := _series_folder():
        from announcer.commands.many import log_folder

        _print_folder(log_folder(folder, talk))
    typer.echo(log_lines(state["config"], talk), nl=False)


@app.command()
def calendar(
    out: Optional[Path] = typer.Option(None, metavar="FILE", help="Write the feed here (default: stdout)."),
    now: Optional[str] = typer.Option(None, help="Act as if it were this ISO 8601 time."),
) -> None:
    """The series as one subscribable calendar feed (ICS): every talk, past and upcoming."""
    from announcer.commands.publish import calendar_command

    feed, wrote = calendar_command(state["config"], out, now)
    if wrote:
        typer.echo(wrote)
    else:
        sys.stdout.buffer.write(feed)


@app.command()
def site(
    out: Optional[Path] = typer.Option(None, metavar="DIR", help="Write index.html and series.ics here (default: site/)."),
    now: Optional[str] = typer.Option(None, help="Act as if it were this ISO 8601 time."),
) -> None:
    """The series' schedule page: index.html with every talk, and series.ics beside it."""
    from announcer.commands.publish import site_command

    typer.echo(site_command(state["config"], out, now), nl=False)


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
