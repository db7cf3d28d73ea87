"""[smtp]'s sources of the secret (SPEC 8.3): exactly one of password_env, password_command and
keyring, or OAuth2 with a token command or a built-in provider; checked at load, at the key's line."""

from __future__ import annotations

import shlex

from announcer.sources.toml_reader import Reader

_PASSWORD_SOURCES = ("password_env", "password_command", "keyring")
_PROVIDERS = {"microsoft": ("oauth2_client_id",), "google": ("oauth2_client_id", "oauth2_client_secret_env")}


def _command(read: Reader, data: dict, key: str) -> tuple[str, ...] | None:
    """A command as words: a string split as a POSIX shell would (run without one), or a TOML list."""
    value = data.get(key)
    if value is None:
        return None
    try:
        words = shlex.split(value) if isinstance(value, str) else value
    except ValueError as error:
        read.problem("smtp", key, f'"{key}": {error} (write it as a shell would, or as a list of words)')
        return None
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
        read.problem("smtp", key, f'"{key}" must be a command: a string, or a list of words like ["pass", "mail"]')
        return None
    return tuple(words)


def load_secret_sources(read: Reader, data: dict, username: str | None, password_env: str | None) -> dict:
    """password_command, keyring and the OAuth2 keys: exactly one source of the secret, when logging in."""
    found = {"password_command": _command(read, data, "password_command"),
             "keyring": read.text("smtp", data, "keyring"),
             "auth": data.get("auth", "password"),
             "oauth2_token_command": _command(read, data, "oauth2_token_command"),
             "oauth2_provider": read.text("smtp", data, "oauth2_provider"),
             "oauth2_client_id": read.text("smtp", data, "oauth2_client_id"),
             "oauth2_tenant": read.text("smtp", data, "oauth2_tenant") or "organizations",
             "oauth2_client_secret_env": read.variable("smtp", data, "oauth2_client_secret_env")}
    given = [key for key in _PASSWORD_SOURCES if key in data]
    if found["auth"] not in ("password", "oauth2"):
        read.problem("smtp", "auth", f'"auth" must be "password" or "oauth2", not {found["auth"]!r}')
    elif found["auth"] == "oauth2":
        tokens = [key for key in ("oauth2_token_command", "oauth2_provider") if key in data]
        for key in given:
            read.problem("smtp", key, f'"{key}" is a password: with auth = "oauth2" the token comes from '
                                      '"oauth2_token_command" or "oauth2_provider"')
        if len(tokens) != 1:
            read.problem("smtp", tokens[1] if tokens[1:] else "auth", 'auth = "oauth2" needs exactly one of '
                         '"oauth2_token_command" or "oauth2_provider"')
        provider = found["oauth2_provider"]
        if provider is not None and provider not in _PROVIDERS:
            read.problem("smtp", "oauth2_provider", f'"oauth2_provider" must be "microsoft" or "google", not {provider!r}')
        for key in _PROVIDERS.get(provider or "", ()):
            if found[key] is None:
                read.problem("smtp", "oauth2_provider", f'oauth2_provider = "{provider}" needs "{key}"')
        if not username:
            read.problem("smtp", "auth", 'auth = "oauth2" needs "username": the mailbox the token is for')
    elif len(given) > 1:
        for key in given[1:]:
            read.problem("smtp", key, f'"{key}": give exactly one source of the password, not '
                                      + " and ".join(f'"{k}"' for k in given))
    elif "keyring" in given and not username:
        read.problem("smtp", "keyring", '"keyring" needs "username": the keyring holds the password under it')
    elif username and not given:
        read.problem("smtp", "username", '"username" needs a password: "password_env" (a variable), '
                                         '"password_command" or "keyring"')
    else:
        for key in ("oauth2_token_command", "oauth2_provider", "oauth2_client_id", "oauth2_client_secret_env"):
            if key in data:
                read.problem("smtp", key, f'"{key}" goes with auth = "oauth2"')
    return found
