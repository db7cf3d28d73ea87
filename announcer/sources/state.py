"""`[state] url`, `series`, `password_env`: a series' ledger in PostgreSQL (SPEC 8.4), read with lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from announcer.sources.toml_reader import Reader
from announcer.sources.values import not_text


@dataclass(frozen=True)
class Postgres:
    """`[state] url`: the ledger in a PostgreSQL database shared by many series and hosts (SPEC 8.4)."""

    url: str                    # postgresql://USER@HOST:PORT/DB, never with a password
    series: str                 # this series' key in the database, chosen by the organiser
    password_env: str | None    # else libpq's own: PGPASSWORD or ~/.pgpass

    @property
    def shown(self) -> str:
        """The URL as log lines and errors give it: without its query (libpq options)."""
        return self.url.split("?", 1)[0]


def load_postgres(read: Reader, data: dict) -> Postgres | None:
    """`[state] url`, `series` and `password_env`; None when the ledger is the SQLite file."""
    url = read.convert("state", data, "url", _postgres_url)
    series = read.text("state", data, "series")
    password_env = read.variable("state", data, "password_env")
    if url is None:
        for key in ("series", "password_env") if "url" not in data else ():   # a bad url is a problem of its own
            if key in data:
                read.problem("state", key, f'"{key}" is for a PostgreSQL ledger: add "url" or remove it')
        return None
    if "path" in data:
        read.problem("state", "path", '"path" and "url" name two ledgers: keep one')
    if series is None:
        read.problem("state", "url", '"url" needs "series" beside it: the series\' key in the database, the same on '
                                     'every host and no other series\' (e.g. series = "mad")')
        return None
    return Postgres(url, series, password_env)


def _postgres_url(value: Any) -> str:
    """A postgresql:// URL without a password (it would show in every log line naming the ledger)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a URL such as \"postgresql://announcer@db.example.org:5432/announcer\"")
    value = value.strip()
    if what := not_text(value):
        raise ValueError(f"holds {what}: remove it")
    try:
        parts = urlsplit(value)
        password, port = parts.password, parts.port  # reading the port checks it
    except ValueError:  # the value itself is not shown: it may hold a password
        raise ValueError("is not a valid URL: write postgresql://USER@HOST:PORT/DATABASE") from None
    if password is not None or any(key.strip().lower() == "password" for key, _ in parse_qsl(parts.query)):
        raise ValueError("never write the password in the URL: use PGPASSWORD, ~/.pgpass or "
                         '"password_env" (the URL is shown in the log)')
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/") or port == 0:
        raise ValueError("must be postgresql://USER@HOST:PORT/DATABASE")
    return value
