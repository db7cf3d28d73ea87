"""Reading announcer.toml's values: each typed and checked, each problem at its key's line
(tomllib keeps no positions, so Lines finds them in the text)."""

from __future__ import annotations

import re
from email.errors import ObsoleteHeaderDefect
from email.headerregistry import Address, HeaderRegistry
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from announcer.errors import Problem
from announcer.sources.values import MAX_LINE, did_you_mean, is_host_name, not_text, shown

MAX_ADDRESS = 254  # an address's own length limit (RFC 5321 4.5.3.1)


class Lines:
    """Finds the line of a key in TOML text, since tomllib keeps no positions."""

    def __init__(self, text: str):
        self.rows: list[tuple[str, int, str, int]] = []  # (table, index, key, line)
        table, index, counts = "", 0, {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if header := re.fullmatch(r"\[\[\s*([\w.-]+)\s*\]\]", line):
                table = header[1]
                index = counts[table] = counts.get(table, -1) + 1
                self.rows.append((table, index, "", number))
            elif header := re.fullmatch(r"\[\s*([\w.-]+)\s*\]", line):
                table, index = header[1], 0
                self.rows.append((table, 0, "", number))
            elif key := re.match(r"([\w-]+|\"[^\"]*\")\s*=", line):
                self.rows.append((table, index, key[1].strip('"'), number))

    def of(self, table: str, key: str = "", index: int = 0) -> int | None:
        for row_table, row_index, row_key, number in self.rows:
            if (row_table, row_index, row_key) == (table, index, key):
                return number
        if key:
            return self.of(table, "", index)
        return None


class Reader:
    """Reads typed values out of the parsed TOML, collecting problems instead of stopping."""

    def __init__(self, path: Path, lines: Lines, schema: dict[str, set[str]]):
        self.path, self.lines, self.schema, self.problems = path, lines, schema, []

    def problem(self, table: str, key: str, message: str, index: int = 0) -> None:
        line = self.lines.of(table, key, index) or 1  # 1: a table the file does not have
        self.problems.append(Problem(self.path, line, message))

    def check_keys(self, table: str, data: dict[str, Any], index: int = 0) -> None:
        allowed = self.schema[table]
        for key in data:
            if (table, key) == ("smtp", "password"):
                self.problem(table, key, 'never write the password in the file: name an environment '
                                         'variable with "password_env"')
            elif key not in allowed:
                where = f"[{table}]" if table else "the top level"
                self.problem(table, key, f'unknown key "{key}" in {where}{did_you_mean(key, allowed)}', index)

    def text(self, table: str, data: dict, key: str, required: bool = False, index: int = 0) -> str | None:
        value = data.get(key)
        if value is None or (value == "" and not required):
            if required:
                self.problem(table, "", f'[{table}] needs "{key}"', index)
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(table, key, f'"{key}" must be a non-empty string', index)
            return None
        if "\n" in value or "\r" in value:
            self.problem(table, key, f'"{key}" must be on one line', index)
            return None
        if what := not_text(value):
            self.problem(table, key, f'"{key}" holds {what}: remove it', index)
            return None
        if len(value) > MAX_LINE:
            self.problem(table, key, f'"{key}" is {len(value)} characters long: at most {MAX_LINE}', index)
            return None
        return value.strip()

    def place(self, table: str, data: dict, key: str) -> str | None:
        """A relative or absolute path: text whose every folder or file name fits a file system."""
        value = self.text(table, data, key)
        if value is not None and any(len(part.encode("utf-8")) > 255 for part in Path(value).parts):
            self.problem(table, key, f'"{key}": a folder or file name in it is over 255 bytes')
            return None
        return value

    def variable(self, table: str, data: dict, key: str) -> str | None:
        """The name of an environment variable, such as ANNOUNCER_SMTP_PASSWORD."""
        value = self.text(table, data, key)
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            self.problem(table, key, f'"{key}": {shown(value)} is not the name of an environment variable, '
                                     'such as "ANNOUNCER_SMTP_PASSWORD"')
            return None
        return value

    def convert(self, table: str, data: dict, key: str, parse, default=None, index: int = 0):
        value = data.get(key)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as error:
            self.problem(table, key, f'"{key}": {error}', index)
            return default

    def address(self, table: str, key: str, value: Any) -> Address | None:
        if not isinstance(value, str) or "".join(value.splitlines()) != value:  # any line break, \u2028 too
            self.problem(table, key, f'"{key}" must be an e-mail address on one line')
            return None
        address, why = one_address(value)
        if address is None:
            self.problem(table, key, f'"{key}": {shown(value)} is not {why}: write one address like '
                                     '"Seminar <seminar@example.edu>"')
        return address


_HEADERS = HeaderRegistry()


def one_address(value: str) -> tuple[Address | None, str]:
    """The one address `value` holds, read as a mail header reads it; or None and why not.

    Read as the email package reads a header, so that what is checked is what is sent: a display
    name such as `Evil Bcc: x@evil.example <a@example.edu>` is a group whose member is x@evil.example.
    """
    if not_text(value) or len(value) > MAX_LINE:
        return None, f"one line of at most {MAX_LINE} characters of text"
    try:
        header = _HEADERS("From", value)
    except (ValueError, IndexError, TypeError):  # the header parser's own failures
        return None, "one e-mail address"
    defects = [d for d in header.defects if not isinstance(d, ObsoleteHeaderDefect)]  # "Dr. Who": obsolete, fine
    if (defects or len(header.groups) != 1 or header.groups[0].display_name is not None
            or len(header.addresses) != 1):
        return None, "exactly one e-mail address"
    address = header.addresses[0]
    spec = address.addr_spec
    if (parseaddr(value)[1] != spec or not address.username or not spec.isascii() or len(spec) > MAX_ADDRESS
            or not is_host_name(address.domain) or "." not in address.domain):
        return None, "an e-mail address at a host name"
    return Address(display_name=address.display_name, username=address.username, domain=address.domain), ""
