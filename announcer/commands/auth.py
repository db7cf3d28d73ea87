"""`announcer auth login`: sign in once to the configured OAuth2 provider (device code)."""

from __future__ import annotations

from collections.abc import Callable

from announcer.sources.config import find_config, load_config


def auth_login(config_option: str | None, say: Callable[[str], None]) -> str:
    """Run the provider's device-code sign-in and keep its refreshable token; the report line."""
    from announcer.deliver.oauth2 import sign_in

    config = load_config(find_config(config_option))
    who = sign_in(config, say)
    return f"signed in as {who}; the token is kept in {config.token_cache} (readable by you only)"
