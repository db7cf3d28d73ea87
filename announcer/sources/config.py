"""announcer.toml -> a frozen Config, with `path:line` on every problem."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import time, timedelta
from email.headerregistry import Address
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from announcer.errors import AnnouncerError, InputError, Problem
from announcer.sources.smtp_auth import load_secret_sources
from announcer.sources.state import Postgres, load_postgres
from announcer.sources.timing import load_zone, parse_duration, parse_time_of_day
from announcer.sources.toml_reader import Lines, Reader, one_address
from announcer.sources.values import LINK, MAX_KIND, is_host_name, not_text, shown

CONFIG_ENV = "ANNOUNCER_CONFIG"
AUTOMATIC_KINDS = ("update", "cancellation")
MASK = "********"  # a secret (the Approved password) wherever it would be shown


@dataclass(frozen=True)
class Series:
    name: str
    timezone: ZoneInfo
    location: str | None
    duration: timedelta
    url: str | None
    subscribe_url: str | None
    domain: str
    talks_dir: Path
    templates_dir: Path | None
    also_show: tuple[ZoneInfo, ...] = ()   # more zones every message, invite and page gives the time in


@dataclass(frozen=True)
class Mail:
    sender: Address
    to: tuple[Address, ...]
    reply_to: Address | None
    approved_password_env: str | None
    max_size: int  # bytes


@dataclass(frozen=True)
class MessageRule:
    """One `[[messages]]` table: which kind goes out how long before the talk."""

    kind: str
    before: timedelta
    at: time | None
    before_text: str
    line: int | None = None  # of its "kind" in announcer.toml, for problems with its templates


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    security: str  # "starttls" | "tls" | "none"
    username: str | None
    password_env: str | None
    ca_file: Path | None
    timeout: float  # seconds
    # Issue 19: where the secret comes from (exactly one source), and OAuth2.
    password_command: tuple[str, ...] | None = None   # run without a shell; its first line is the password
    keyring: str | None = None                        # the keyring service; the user is `username`
    auth: str = "password"                            # "password" | "oauth2"
    oauth2_token_command: tuple[str, ...] | None = None
    oauth2_provider: str | None = None                # "microsoft" | "google"
    oauth2_client_id: str | None = None
    oauth2_tenant: str = "organizations"
    oauth2_client_secret_env: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    series: Series
    mail: Mail
    messages: tuple[MessageRule, ...]
    transport: str  # "smtp" | "maildir"
    maildir: Path
    smtp: Smtp | None
    ledger_path: Path
    postgres: Postgres | None = None   # the ledger's place when it is not the SQLite file at ledger_path

    @property
    def token_cache(self) -> Path:
        """The OAuth2 token cache of a built-in provider: beside the ledger, readable by its owner only."""
        return self.ledger_path.with_name(self.ledger_path.name + ".tokens.json")

    @property
    def watched_paths(self) -> tuple[Path, ...]:
        """Files and folders whose edits change what is planned."""
        paths = [self.path, self.series.talks_dir]
        if self.series.templates_dir:
            paths.append(self.series.templates_dir)
        return tuple(paths)


SCHEMA: dict[str, set[str]] = {
    "": {"series", "mail", "messages", "delivery", "smtp", "state"},
    "series": {"name", "timezone", "location", "duration", "url", "subscribe_url", "domain",
               "talks_dir", "templates_dir", "also_show"},
    "mail": {"from", "to", "reply_to", "approved_password_env", "max_size"},
    "messages": {"kind", "before", "at"},
    "delivery": {"transport", "maildir"},
    "smtp": {"host", "port", "security", "username", "password_env", "ca_file", "timeout",
             "password_command", "keyring", "auth", "oauth2_token_command", "oauth2_provider",
             "oauth2_client_id", "oauth2_tenant", "oauth2_client_secret_env"},
    "state": {"path", "url", "series", "password_env"},
}
DEFAULT_MESSAGES = [{"kind": "announcement", "before": "7d", "at": "09:00"},
                    {"kind": "reminder", "before": "1h"}]
_SIZE = re.compile(r"(\d+)\s*(B|KB|MB)?", re.IGNORECASE)
_KIND = re.compile(r"[a-z][a-z0-9_-]*")
MAX_TIMEOUT = timedelta(hours=1)


def find_config(option: str | None) -> Path:
    """The config file: `--config`, else $ANNOUNCER_CONFIG, else ./announcer.toml."""
    chosen = option or os.environ.get(CONFIG_ENV) or "announcer.toml"
    path = Path(chosen)
    if path.is_dir():  # a folder of series (SPEC 8.4): only some commands act on every series
        raise AnnouncerError(f"{path} is a folder of series: this command takes one series "
                             f"(--config {path / 'SERIES' / 'announcer.toml'})")
    if not path.is_file():
        raise InputError([Problem(path, None, "no such config file (give --config PATH, set "
                                  f"${CONFIG_ENV}, or run `announcer init`)")])
    return path


def _parse_size(text: str | int) -> int:
    if isinstance(text, bool) or isinstance(text, int) and text <= 0:
        raise ValueError(f"{shown(text)} is not a size: write e.g. \"40KB\"")
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) and len(text) < 40 else None
    if not match or not int(match[1]):
        raise ValueError(f"{shown(text)} is not a size: write e.g. \"40KB\"")
    factor = {"B": 1, "KB": 1024, "MB": 1024 * 1024}[(match[2] or "B").upper()]
    return int(match[1]) * factor


def _link(value: str) -> str:
    if not isinstance(value, str) or not LINK.fullmatch(value) or not_text(value):
        raise ValueError(f"{shown(value)} must be an http(s) or mailto link on one line")
    return value


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _deepest_line(text: str) -> int:
    """The line where brackets first nest past a hundred (tomllib gives no line for a RecursionError)."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for character in line:
            depth += (character in "[{") - (character in "]}")
            if depth > 100:
                return number
    return 1


def load_config(path: Path) -> Config:
    """Read and validate announcer.toml; raise InputError naming every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise InputError([Problem(path, line, f"not UTF-8 text (byte 0x{raw[error.start]:02x}); "
                                              "save the file as UTF-8")])
    except OSError as error:
        raise InputError([Problem(path, None, f"cannot read: {error.strerror}")])
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise InputError([Problem(path, _deepest_line(text), "nested too deep for a configuration")]) from None
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        match = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(match[1]) if match else len(text.splitlines()) or 1  # "(at end of document)"
        what = re.sub(r" ?[(]at (line|end of document).*", "", message)
        raise InputError([Problem(path, line, f"not valid TOML: {what}")])
    except ValueError:  # int() refusing a number of over 4,300 digits (after TOMLDecodeError, a ValueError too)
        line = next((n for n, row in enumerate(text.splitlines(), 1) if re.search(r"\d{4300}", row)), 1)
        raise InputError([Problem(path, line, "a number too long to read")]) from None
    read = Reader(path, Lines(text), SCHEMA)
    base = path.resolve().parent
    read.check_keys("", data)
    sections = {}
    for name in ("series", "mail", "delivery", "smtp", "state"):
        section = data.get(name, {})
        if not isinstance(section, dict):
            read.problem(name, "", f'"{name}" must be a table: [{name}]')
            section = {}
        read.check_keys(name, section)
        sections[name] = section

    series = _load_series(read, sections["series"], sections["mail"], base)
    mail = _load_mail(read, sections["mail"])
    messages = _load_messages(read, data.get("messages"))
    transport = sections["delivery"].get("transport", "smtp")
    if transport not in ("smtp", "maildir"):
        read.problem("delivery", "transport",
                     f'"transport" must be "smtp" or "maildir", not {shown(transport)}')
    maildir = base / (read.place("delivery", sections["delivery"], "maildir") or "outbox")
    smtp = _load_smtp(read, sections["smtp"], base, required=transport == "smtp")
    ledger_path = base / (read.place("state", sections["state"], "path") or "announcer.db")
    postgres = load_postgres(read, sections["state"])

    if read.problems or series is None or mail is None:
        raise InputError(read.problems or [Problem(path, 1, "incomplete configuration")])
    return Config(path=path, series=series, mail=mail, messages=messages, transport=transport,
                  maildir=maildir, smtp=smtp, ledger_path=ledger_path, postgres=postgres)


def _load_series(read: Reader, data: dict, mail: dict, base: Path) -> Series | None:
    name = read.text("series", data, "name", required=True)
    zone_name = read.text("series", data, "timezone", required=True)
    zone = read.convert("series", data, "timezone", load_zone) if zone_name else None
    duration = read.convert("series", data, "duration", parse_duration, timedelta(hours=1))
    url = read.convert("series", data, "url", _link)
    subscribe_url = read.convert("series", data, "subscribe_url", _link)
    domain = read.text("series", data, "domain")
    if domain is not None and not is_host_name(domain):
        read.problem("series", "domain", f'"domain": {shown(domain)} is not a host name like "mad.example.edu"')
    if domain is None:
        sender = one_address(mail["from"])[0] if isinstance(mail.get("from"), str) else None
        domain = sender.domain if sender else "localhost"
    talks_dir = base / (read.place("series", data, "talks_dir") or "talks")
    templates = read.place("series", data, "templates_dir")
    templates_dir = base / templates if templates else None
    if templates_dir and not templates_dir.is_dir():
        read.problem("series", "templates_dir", f'"templates_dir": no such folder {templates_dir}')
    also_show = read.convert("series", data, "also_show", _zones, ())
    if name is None or zone is None:
        return None
    return Series(name=name, timezone=zone, location=read.text("series", data, "location"),
                  duration=duration, url=url, subscribe_url=subscribe_url, domain=domain,
                  talks_dir=talks_dir, templates_dir=templates_dir, also_show=also_show)


def _zones(value: Any) -> tuple[ZoneInfo, ...]:
    """`also_show`: a list of IANA zone names."""
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValueError('write a list of IANA zone names, e.g. ["Europe/London", "Asia/Kolkata"]')
    return tuple(load_zone(name) for name in value)


def _load_mail(read: Reader, data: dict) -> Mail | None:
    sender = read.address("mail", "from", data["from"]) if "from" in data else None
    if "from" not in data:
        read.problem("mail", "", '[mail] needs "from"')
    raw_to = data.get("to")
    if isinstance(raw_to, str):
        raw_to = [raw_to]
    if not raw_to or not isinstance(raw_to, list):
        read.problem("mail", "to" if "to" in data else "", '[mail] needs "to": the list address(es)')
        raw_to = []
    to = tuple(a for a in (read.address("mail", "to", v) for v in raw_to) if a)
    reply_to = read.address("mail", "reply_to", data["reply_to"]) if "reply_to" in data else None
    approved = read.variable("mail", data, "approved_password_env")
    max_size = read.convert("mail", data, "max_size", _parse_size, 40 * 1024)
    if sender is None or not to:
        return None
    return Mail(sender=sender, to=to, reply_to=reply_to, approved_password_env=approved, max_size=max_size)


def _load_messages(read: Reader, tables: Any) -> tuple[MessageRule, ...]:
    if tables is None:
        tables = DEFAULT_MESSAGES
    if not isinstance(tables, list):
        read.problem("messages", "", "messages must be tables written [[messages]]")
        return ()
    rules: list[MessageRule] = []
    for index, table in enumerate(tables):
        read.check_keys("messages", table, index)
        kind = read.text("messages", table, "kind", required=True, index=index)
        before = read.convert("messages", table, "before", parse_duration, index=index)
        if "before" not in table:
            read.problem("messages", "", '[[messages]] needs "before"', index)
        at = read.convert("messages", table, "at", parse_time_of_day, index=index)
        if kind is None or before is None:
            continue
        if not _KIND.fullmatch(kind) or len(kind) > MAX_KIND:
            read.problem("messages", "kind", f'"kind" {shown(kind)} must be a lower-case name like "reminder" '
                                             f"of at most {MAX_KIND} characters", index)
        elif not before:
            read.problem("messages", "before", f'"before" {table["before"]!r}: a message must go out before '
                                               "its talk (at 0s it would always be missed)", index)
        elif kind in AUTOMATIC_KINDS:
            read.problem("messages", "kind", f'"{kind}" messages are sent automatically when a talk '
                                             "changes; they need no [[messages]] entry", index)
        elif any(r.kind == kind and r.before == before for r in rules):
            read.problem("messages", "kind", f'"{kind}" {table["before"]} before is listed twice', index)
        elif kind == "announcement" and any(r.kind == kind for r in rules):
            read.problem("messages", "kind", "only one announcement per talk (use a reminder kind for more)", index)
        else:
            rules.append(MessageRule(kind=kind, before=before, at=at, before_text=str(table["before"]),
                                     line=read.lines.of("messages", "kind", index)))
    return tuple(rules)


def _load_smtp(read: Reader, data: dict, base: Path, required: bool) -> Smtp | None:
    if not data:
        if required:
            read.problem("delivery", "transport", 'transport "smtp" needs an [smtp] table (or use "maildir")')
        return None
    host = read.text("smtp", data, "host", required=True)
    security = data.get("security", "starttls")
    if security not in ("starttls", "tls", "none"):
        read.problem("smtp", "security",
                     f'"security" must be "starttls", "tls" or "none", not {shown(security)}')
        security = "starttls"
    port = data.get("port", {"starttls": 587, "tls": 465}.get(security, 25))
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        read.problem("smtp", "port", f'"port" must be a whole number from 1 to 65535, not {shown(port)}')
    if host is not None and not is_host_name(host) and not _is_ip_address(host):
        read.problem("smtp", "host", f'"host": {shown(host)} is not a host name or address')
    username = read.text("smtp", data, "username")
    password_env = read.variable("smtp", data, "password_env")
    secret = load_secret_sources(read, data, username, password_env)
    if username and security == "none":
        read.problem("smtp", "username", '"username" needs security "starttls" or "tls": '
                                         "a password is never sent over a connection in clear")
    ca_text = read.text("smtp", data, "ca_file")
    ca_file = base / ca_text if ca_text else None
    if ca_file and not ca_file.is_file():
        read.problem("smtp", "ca_file", f'"ca_file": no such file {ca_file}')
    timeout = read.convert("smtp", data, "timeout", parse_duration, timedelta(seconds=30))
    if timeout > MAX_TIMEOUT:
        read.problem("smtp", "timeout",
                     f'"timeout" {data["timeout"]!r} is over an hour: a pass would wait that long')
        timeout = timedelta(seconds=30)
    if host is None:
        return None
    return Smtp(host=host, port=port, security=security, username=username, password_env=password_env,
                ca_file=ca_file, timeout=timeout.total_seconds() or 30.0, **secret)
