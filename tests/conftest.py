"""Shared fixtures: real SMTP servers on 127.0.0.1 (see smtp_server.py) and a config writer."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from smtp_server import PASSWORD, PASSWORD_ENV, MailServer, write_ca


@pytest.fixture(scope="session")
def trustme_ca() -> trustme.CA:
    """The test certificate authority that signs the servers' certificates."""
    return trustme.CA()


@pytest.fixture(scope="session")
def smtp_ca(trustme_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the test CA's PEM file, for `ca_file`."""
    return write_ca(trustme_ca, tmp_path_factory.mktemp("ca"))


def _serve(security: str, ca: trustme.CA | None, ca_file: Path | None) -> Iterator[MailServer]:
    server = MailServer(security, ca, ca_file).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_starttls(trustme_ca: trustme.CA, smtp_ca: Path) -> Iterator[MailServer]:
    """A server requiring STARTTLS, then AUTH as USERNAME/PASSWORD."""
    yield from _serve("starttls", trustme_ca, smtp_ca)


@pytest.fixture
def smtp_tls(trustme_ca: trustme.CA, smtp_ca: Path) -> Iterator[MailServer]:
    """An implicit-TLS server (SMTPS) requiring AUTH as USERNAME/PASSWORD."""
    yield from _serve("tls", trustme_ca, smtp_ca)


@pytest.fixture
def smtp_plain() -> Iterator[MailServer]:
    """A plain server: no TLS, no AUTH."""
    yield from _serve("none", None, None)


@pytest.fixture
def smtp_password_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Sets $ANNOUNCER_SMTP_PASSWORD to the test password (inherited by subprocesses); returns the name."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return PASSWORD_ENV


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def announcer_command(lease_seconds: float | None = None) -> list[str]:
    """The announcer CLI as a process (arguments follow); with lease_seconds, claims hold leases
    that short, so that a test sees a killed process's claim run out in seconds, not a minute."""
    if lease_seconds is None:
        return [sys.executable, "-m", "announcer"]
    code = ("import datetime, announcer.cli as cli; from announcer.deliver.ledger import sqlite, postgres; "
            f"sqlite.LEASE = postgres.LEASE = datetime.timedelta(seconds={lease_seconds}); cli.main()")
    return [sys.executable, "-c", code]


DEFAULT_MESSAGES = [{"kind": "announcement", "before": "7d", "at": "09:00"},
                    {"kind": "reminder", "before": "1h"}]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(tmp_path: Path, server: MailServer | None = None, **overrides: Any) -> Path:
    """Write tmp_path/announcer.toml for `server` (Maildir delivery if None) and return its path.

    Each override is a section: a dict merged into it (a None value removes the key), e.g.
    `smtp={"timeout": "2s"}`, `mail={"to": ["a@example.org"]}`; `messages=[{...}, ...]`
    replaces the [[messages]] tables (DEFAULT_MESSAGES). The talks folder is created, empty.
    """
    sections: dict[str, dict[str, Any]] = {
        "series": {"name": "Test Seminar", "timezone": "America/New_York", "location": "Room 101",
                   "domain": "seminar.example.org", "talks_dir": "talks"},
        "mail": {"from": "Test Seminar <seminar@example.org>", "to": ["seminar-list@example.org"]},
        "delivery": {"transport": "smtp" if server else "maildir", "maildir": "outbox"},
        "state": {"path": "announcer.db"},
    }
    if server is not None:
        sections["smtp"] = {"host": server.host, "port": server.port, "security": server.security,
                            "timeout": "5s"}
        if server.username:
            sections["smtp"].update(username=server.username, password_env=PASSWORD_ENV)
        if server.ca_file:
            sections["smtp"]["ca_file"] = str(server.ca_file)
    messages = overrides.pop("messages", DEFAULT_MESSAGES)
    for name, values in overrides.items():
        section = sections.setdefault(name, {})
        for key, value in values.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
    lines = []
    for name, section in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in section.items())
        lines.append("")
    for table in messages:
        lines.append("[[messages]]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        lines.append("")
    (tmp_path / "talks").mkdir(exist_ok=True)
    path = tmp_path / "announcer.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def pytest_configure(config: pytest.Config) -> None:
    # The implicit-TLS server must allow AUTH "without TLS" (aiosmtpd only counts STARTTLS), which it warns about.
    config.addinivalue_line("filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed here as root when CI=true or ANNOUNCER_INSTALL_CHROMIUM=1; else a skip
    that names the command."""
    from browser import find_or_install_chromium

    path, reason = find_or_install_chromium()
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture
def start_daemon():
    """Starts daemons; kills any still running when the test ends."""
    from daemon_process import DaemonProcess

    started: list[DaemonProcess] = []

    def start(config: Path, *options: str, env: dict[str, str] | None = None,
              lease_seconds: float | None = None) -> DaemonProcess:
        daemon = DaemonProcess(config, *options, env=env, lease_seconds=lease_seconds)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(5)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on 127.0.0.1 for the whole run (tests/postgres_server.py); a skip
    that names the command when PostgreSQL is not installed and may not be installed here."""
    from postgres_server import PostgresServer, find_or_install_postgresql

    bin_dir, reason = find_or_install_postgresql()
    if bin_dir is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)   # CI must test it
    with PostgresServer(bin_dir) as server:
        yield server


@pytest.fixture
def postgres(postgres_server, monkeypatch):
    """The server with an empty `announcer` database, and PGPASSWORD set for its role."""
    from postgres_server import PASSWORD

    postgres_server.reset()
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return postgres_server
