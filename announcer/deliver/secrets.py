"""The secrets a send needs (the SMTP and Mailman passwords), read when it needs them, never shown."""

from __future__ import annotations

import os

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
    return value


def smtp_password(config: Config) -> str | None:
    """The SMTP password from its variable; checked before anything is sent."""
    smtp = config.smtp
    if config.transport != "smtp" or smtp is None or not smtp.password_env:
        return None
    value = os.environ.get(smtp.password_env)
    if not value:
        raise AnnouncerError(f"{config.path}: password_env names ${smtp.password_env}, which is not set")
    return value
