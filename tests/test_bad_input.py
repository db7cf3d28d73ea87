"""SPEC 6 through the real CLI: each bad input is one `path:line: message`, exit 1, nothing sent."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from announcer.cli import app

from series_files import write_series

runner = CliRunner()
DUE = "title: Due now\nspeaker: Ada Lovelace\nstart: 2027-02-21 14:00\n"
NOW = "2027-02-14T14:05:00+00:00"  # the talk's announcement (7 days before, 09:00) is due


def run(config: Path, *args: str, env: dict | None = None):
    return runner.invoke(app, ["--config", str(config), *args], env=env)


def sent(root: Path) -> list[Path]:
    new = root / "outbox" / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def assert_one_line_error(result, path: Path, line: int | None = None) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [text for text in result.output.splitlines() if text.startswith(f"{path}:")]
    assert errors, result.output
    if line is not None:
        assert errors[0].startswith(f"{path}:{line}: "), errors
    return errors[0]


# Each made a traceback in every command (issue 13); now one line with its place.
BAD_TALKS = {
    "date that does not exist": ("title: T\nstart: 2027-02-30\n", 2),
    "end that does not exist": ("title: T\nstart: 2027-02-21 14:00\nend: 2027-02-30\n", 3),
    "year 0": ("title: T\nstart: 0000-10-06 14:00:00\n", 2),
    "24:00": ("title: T\nstart: 2027-02-21 24:00:00\n", 2),
    "offset form": ("title: T\nstart: 2026-02-30T14:00:00-05:00\n", 2),
    "notes that YAML reads as a date": ("title: T\nstart: 2027-02-21 14:00\nnotes: 2027-02-29\n", 3),
    "explicit timestamp": ("title: T\nstart: !!timestamp 2027-02-21 14:00:99\n", 2),
    "lone surrogate": ('title: "Sur\\ud800"\nstart: 2027-02-21 14:00\n', 1),
    "impossible bool": ("title: T\nstart: 2027-02-21 14:00\nstatus: !!bool maybe\n", 3),
    "nested 1,000 deep": ("title: T\nstart: 2027-02-21 14:00\nlinks: " + "[" * 1000 + "]" * 1000 + "\n", 3),
    "nested 100,000 deep": ("title: T\nstart: 2027-02-21 14:00\nlinks: " + "{a: " * 100000 + "}" * 100000 + "\n", 3),
    "duration out of range": ("title: T\nstart: 2027-02-21 14:00\nduration: 99999999999999w\n", 3),
    "5,000-character id": (f"id: {'x' * 5000}\ntitle: T\nstart: 2027-02-21 14:00\n", 1),
    "NUL in a title": ('title: "Deep\\0nets"\nstart: 2027-02-21 14:00\n', 1),
    "vertical tab in a room": ('title: T\nlocation: "Room\\v1"\nstart: 2027-02-21 14:00\n', 2),
    "C1 control in the abstract": ('title: T\nabstract: "a\\x9bb"\nstart: 2027-02-21 14:00\n', 2),
    "NEL in the speaker": ('title: T\nspeaker: "Ada\\NBcc: x@evil.example"\nstart: 2027-02-21 14:00\n', 2),
    "U+2028 in the title": ('title: "T\\LBcc: x@evil.example"\nstart: 2027-02-21 14:00\n', 1),
    "year 9999": ("title: T\nstart: 9999-12-31 23:00\n", 2),
}


@pytest.mark.parametrize("command", [["check"], ["plan", "--now", NOW], ["preview", "--now", NOW],
                                     ["send", "--due", "--now", NOW]])
@pytest.mark.parametrize("case", sorted(BAD_TALKS))
def test_a_bad_talk_is_one_line_in_every_command_and_nothing_is_sent(tmp_path, case, command):
    text, line = BAD_TALKS[case]
    config = write_series(tmp_path, {"a-due.yaml": DUE})
    bad = tmp_path / "talks" / "bad.yaml"
    bad.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = run(config, *command)
    error = assert_one_line_error(result, bad, line)
    assert "x" * 100 not in error  # a long value is not echoed whole
    assert sent(tmp_path) == []
    assert not (tmp_path / "announcer.db").exists()


@pytest.mark.parametrize("content", [b"title: T\nspeaker: A\x00B\n", b"\x7fELF\x02\x01\x01\x00" + bytes(56),
                                     "title: T\nstart: 2027-02-21 14:00\n".encode("utf-16-le")])
def test_binary_and_utf16_files_are_one_line_by_line(tmp_path, content):
    config = write_series(tmp_path, {"a-due.yaml": DUE})
    bad = tmp_path / "talks" / "bad.yaml"
    bad.write_bytes(content)
    for command in (["check"], ["send", "--due", "--now", NOW]):
        error = assert_one_line_error(run(config, *command), bad)
        assert "position" not in error and error.split(":")[1].isdigit()
    assert sent(tmp_path) == []


def test_a_talk_in_the_autumn_fold_written_in_utc_is_checked_and_previewed(tmp_path):
    config = write_series(tmp_path, {"fold.yaml": "title: T\nspeaker: A\nstart: 2027-11-07T05:30:00+00:00\n"
                                                  "end: 2027-11-07T06:30:00+00:00\n"})
    assert run(config, "check", "--now", "2027-10-01T00:00Z").exit_code == 0
    result = run(config, "preview", "fold", "--kind", "announcement", "--now", "2027-10-01T00:00Z")
    assert result.exit_code == 0 and "1:30" in result.output


def test_a_symbolic_link_to_a_system_file_is_refused_without_echoing_it(tmp_path):
    config = write_series(tmp_path, {"a-due.yaml": DUE})
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    link = tmp_path / "talks" / "shadow.yaml"
    link.symlink_to(secret)
    result = run(config, "check")
    assert_one_line_error(result, link, 1)
    assert "secret-hash" not in result.output and "19000" not in result.output


@pytest.mark.parametrize("password", ["s3cret\r\nBcc: x@evil.example", "s3cret\n", "s3cret\x1b[2J", "s3cret\u2028"])
def test_an_approved_password_with_a_line_break_is_one_line_never_shown(tmp_path, password):
    config = write_series(tmp_path, {"a-due.yaml": DUE}, extra="")
    config.write_text(config.read_text().replace('to = ["mad@lists.example.edu"]',
                                                 'to = ["mad@lists.example.edu"]\napproved_password_env = "APPROVED"'))
    result = run(config, "send", "--due", "--now", NOW, env={"APPROVED": password})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == (f"{config}: $APPROVED, the Approved password, must be one line of at most 200 "
                                     "printable ASCII characters (its value is not shown)")
    assert "s3cret" not in result.output
    assert sent(tmp_path) == []


def damage(path: Path) -> None:
    """Overwrite the middle of every page after the first (the file stays a database by its header)."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    for index in range(4096 + 100, len(data), 7):
        data[index] = 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["damaged", "not a database"])
def test_a_corrupt_ledger_is_one_line_naming_it(tmp_path, how):
    config = write_series(tmp_path, {"a-due.yaml": DUE})
    assert run(config, "send", "--due", "--now", NOW).exit_code == 0
    ledger = tmp_path / "announcer.db"
    if how == "damaged":
        damage(ledger)
    else:
        for extra in (tmp_path / "announcer.db-wal", tmp_path / "announcer.db-shm"):
            extra.unlink(missing_ok=True)
        ledger.write_bytes(b"not a database " * 500)
    for command in (["plan", "--now", NOW], ["send", "--due", "--now", "2027-02-21T18:05Z"], ["log"]):
        result = run(config, *command)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.output.startswith(f"{ledger}: ") and result.output.count("\n") == 1, result.output
    assert len(sent(tmp_path)) == 1  # the announcement of the first send, and nothing since


@pytest.fixture
def read_only():
    """Makes a file or folder unwritable, even for root (chattr +i); undone at the end."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o555 if path.is_dir() else 0o444)
        elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr +i: nothing is read-only")
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        else:
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_ledger_is_one_line_naming_it(tmp_path, read_only, what):
    config = write_series(tmp_path, {"a-due.yaml": DUE, "b.yaml": DUE.replace("2027-02-21", "2027-02-22")})
    state = tmp_path / "state"
    config.write_text(config.read_text() + '\n[state]\npath = "state/announcer.db"\n')
    assert run(config, "send", "--due", "--now", NOW).exit_code == 0
    ledger = state / "announcer.db"
    with sqlite3.connect(ledger) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    read_only(ledger if what == "file" else state)
    result = run(config, "send", "--due", "--now", "2027-02-15T14:05Z")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.startswith(f"{ledger}: the ledger is read-only (")
    assert result.output.count("\n") == 1
    assert len(sent(tmp_path)) == 1  # b's announcement was due, and is not sent unrecorded


def test_a_kind_without_templates_is_named_at_its_line_in_the_config(tmp_path):
    config = write_series(tmp_path, {"a-due.yaml": DUE}, extra='\n[[messages]]\nkind = "digest"\nbefore = "2d"\n')
    line = config.read_text().splitlines().index('kind = "digest"') + 1
    for command in (["check"], ["send", "--due", "--now", NOW]):
        result = run(config, *command)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f'{config}:{line}: no template "digest.subject.j2" for messages of kind "digest"' in result.output
    assert sent(tmp_path) == []
