"""The secrets a send needs (the SMTP and Mailman passwords), read when it needs them, never shown.

The SMTP password comes from exactly one of an environment variable, a command (`pass`, a
secrets manager: run without a shell, its first line) or the system keyring (SPEC 8.3).
"""

from __future__ import annotations

import os
import subprocess

from announcer.errors import AnnouncerError
from announcer.sources.config import MASK, Config


def approved_password(config: Config, preview: bool) -> str | None:
    """The Mailman Approved password from its variable, masked for previews and dry runs."""
    variable = config.mail.approved_password_env
    if variable is None:
        return None
    if preview:
        return MASK
    value = os.environ.get(variable)
    if not value:
        raise AnnouncerError(f"{config.path}: approved_password_env names ${variable}, which is not set")
    if not value.isprintable() or not value.isascii() or len(value) > 200:  # never shown: it is a secret
        raise AnnouncerError(f"{config.path}: ${variable}, the Approved password, must be one line of at most 200 "
                             "printable ASCII characters (its value is not shown)")
    return value


def smtp_password(config: Config) -> str | None:
    """The SMTP password from its one source; read (and checked) before anything is sent."""
    smtp = config.smtp
    if config.transport != "smtp" or smtp is None or smtp.auth != "password":
        return None
    if smtp.password_command:
        return command_output(smtp.password_command, f"{config.path}: password_command", AnnouncerError)
    if smtp.keyring:
        return keyring_password(config)
    if not smtp.password_env:
        return None
    value = os.environ.get(smtp.password_env)
    if not value:
        raise AnnouncerError(f"{config.path}: password_env names ${smtp.password_env}, which is not set")
    return value


def command_output(words: tuple[str, ...], what: str, error: type[Exception], timeout: float = 60) -> str:
    """The first line a command prints (run without a shell); a failure is one line naming the
    command's first word, never what it printed (it may be the secret)."""
    name = words[0]
    try:
        done = subprocess.run(words, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise error(f"{what}: no such command {name!r}") from None
    except PermissionError:
        raise error(f"{what}: {name!r} cannot be run (permission denied)") from None
    except subprocess.TimeoutExpired:
        raise error(f"{what}: {name!r} did not finish within {timeout:g}s") from None
    except OSError as failure:
        raise error(f"{what}: {name!r} cannot be run ({failure.strerror})") from None
    if done.returncode != 0:
        raise error(f"{what}: {name!r} failed (exit status {done.returncode})")
    lines = done.stdout.decode("utf-8", "surrogateescape").splitlines()
    first = lines[0].strip() if lines else ""
    if not first:
        raise error(f"{what}: {name!r} printed nothing on its first line")
    return first


def keyring_password(config: Config) -> str:
    """The password the system keyring holds for (service, username), through keyring's own backend choice."""
    import keyring
    from keyring.errors import KeyringError

    smtp = config.smtp
    try:
        value = keyring.get_password(smtp.keyring, smtp.username)
    except KeyringError as error:  # a locked or missing backend: say which, never the value
        raise AnnouncerError(f"{config.path}: keyring: cannot read the password for service {smtp.keyring!r}, "
                             f"user {smtp.username!r}: {type(error).__name__}") from None
    if not value:
        raise AnnouncerError(f"{config.path}: keyring holds no password for service {smtp.keyring!r}, user "
                             f"{smtp.username!r} (store it with: keyring set {smtp.keyring} {smtp.username})")
    return value
