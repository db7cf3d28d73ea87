"""OAuth2 for SMTP (SPEC 8.3): access tokens from a command or a built-in provider, and the SASL strings.

A token is fetched for each connection: from `oauth2_token_command` (its first line), or from the
token cache that `announcer auth login` writes beside the ledger, refreshed before it expires
(Microsoft through MSAL, Google over HTTPS with urllib). The cache is readable by its owner only;
one that others can read is refused. No token, refresh token or cache content is ever shown: a
failure says what failed and what to do, and a rejected token is the server's decoded reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from announcer.deliver.secrets import command_output
from announcer.errors import AnnouncerError, DeliveryError, PermanentFailure, TemporaryFailure
from announcer.sources.config import Config

MICROSOFT_SCOPE = "https://outlook.office.com/SMTP.Send"
GOOGLE_SCOPE = "https://mail.google.com/"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
GOOGLE_DEVICE_URL = "https://oauth2.googleapis.com/device/code"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
# For tests only: the base URL of a local identity provider standing in for Microsoft's or Google's.
ENDPOINT_ENV = "ANNOUNCER_OAUTH2_TEST_ENDPOINT"
REFRESH_MARGIN = 300   # seconds: a token closer than this to its expiry is refreshed first
LOGIN_AGAIN = "run `announcer auth login` again"


def xoauth2(user: str, token: str) -> str:
    """The AUTH XOAUTH2 initial response (Google's and Microsoft's SASL mechanism), base64."""
    raw = f"user={user}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def oauthbearer(user: str, host: str, port: int, token: str) -> str:
    """The AUTH OAUTHBEARER initial response (RFC 7628 section 3.1), base64."""
    raw = f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


def challenge_reason(text: str) -> str:
    """A 334 challenge after a rejected token, in one line: the server's base64 JSON, decoded."""
    try:
        data = json.loads(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError):
        return " ".join(text.split())[:200]
    if not isinstance(data, dict):
        return " ".join(str(data).split())[:200]
    return ", ".join(f"{key} {' '.join(str(value).split())}" for key, value in data.items())


class CommandToken:
    """The token a helper command prints on its first line, run for each connection."""

    def __init__(self, config: Config) -> None:
        self.words = config.smtp.oauth2_token_command
        self.place = f"{config.path}: oauth2_token_command"

    def token(self) -> str:
        """Run the command; a failure is a connection failure (no message failed)."""
        return command_output(self.words, self.place, _refused)

    def state(self) -> str:
        """What the refused-login memory keys on besides the settings (the command is in them)."""
        return ""


def _refused(text: str) -> PermanentFailure:
    return PermanentFailure(text, connection=True)


class TokenCache:
    """The provider's token cache file, beside the ledger, readable and writable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        """The cache's text, or None if there is none yet; refused if others may read it."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PermanentFailure(f"{self.path}: the token cache can be read by others "
                                   f"(mode {stat.S_IMODE(info.st_mode):03o}): refusing to use it; "
                                   f"chmod 600 it, or delete it and {LOGIN_AGAIN}", connection=True)
        return self.path.read_text(encoding="utf-8")

    def write(self, text: str) -> None:
        """Replace the cache in one step, created 0600."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, self.path)

    def state(self) -> str:
        """The cache's content (only ever hashed into the refused-login fingerprint)."""
        try:
            return self.path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""


def _endpoint(default: str, path: str = "") -> str:
    base = os.environ.get(ENDPOINT_ENV)
    return base.rstrip("/") + path if base else default


class MicrosoftToken:
    """Microsoft 365 through MSAL: a public client, its SerializableTokenCache in the cache file."""

    def __init__(self, config: Config) -> None:
        self.smtp = config.smtp
        self.cache = TokenCache(config.token_cache)
        self.place = f"{config.path}: oauth2_provider microsoft"

    def _app(self, cache):
        import msal

        # urllib3 warns on stderr before each retry; the failure is reported once, in one line.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
        testing = os.environ.get(ENDPOINT_ENV)
        authority = f"{_endpoint(MICROSOFT_AUTHORITY)}/{self.smtp.oauth2_tenant}"
        return msal.PublicClientApplication(self.smtp.oauth2_client_id, authority=authority, token_cache=cache,
                                            instance_discovery=False if testing else None)

    def _load(self):
        import msal

        cache = msal.SerializableTokenCache()
        text = self.cache.read()
        if text:
            cache.deserialize(text)
        return cache

    def _save(self, cache) -> None:
        if cache.has_state_changed:
            self.cache.write(cache.serialize())

    def token(self) -> str:
        """A valid access token: from the cache, or refreshed by MSAL (which saves the new one)."""
        cache = self._load()
        try:
            app = self._app(cache)
            accounts = app.get_accounts(username=self.smtp.username) or app.get_accounts()
            if not accounts:
                raise PermanentFailure(f"{self.place}: not signed in as {self.smtp.username!r}: run "
                                       "`announcer auth login`", connection=True)
            result = app.acquire_token_silent_with_error([MICROSOFT_SCOPE], accounts[0])
        except (OSError, ValueError) as error:
            raise _unreachable(self.place, error) from None
        self._save(cache)
        if not result or "access_token" not in result:
            raise _provider_error(self.place, result or {"error": "no token in the cache"})
        return result["access_token"]

    def login(self, say: Callable[[str], None]) -> str:
        """The device-code sign-in: say where to go, wait, keep the refreshable token."""
        cache = self._load()
        try:
            app = self._app(cache)
            flow = app.initiate_device_flow(scopes=[MICROSOFT_SCOPE])
            if "user_code" not in flow:
                raise _login_error(self.place, flow)
            say(flow["message"])
            result = app.acquire_token_by_device_flow(flow)
        except (OSError, ValueError) as error:
            raise _unreachable(self.place, error) from None
        if "access_token" not in result:
            raise _login_error(self.place, result)
        self._save(cache)
        return (result.get("id_token_claims") or {}).get("preferred_username") or self.smtp.username

    def state(self) -> str:
        return self.cache.state()


class GoogleToken:
    """Google: the device-code flow and refresh over HTTPS (urllib), the tokens in the cache file."""

    def __init__(self, config: Config) -> None:
        self.smtp = config.smtp
        self.cache = TokenCache(config.token_cache)
        self.place = f"{config.path}: oauth2_provider google"
        self.config_path = config.path

    def _client(self) -> dict[str, str]:
        variable = self.smtp.oauth2_client_secret_env
        secret = os.environ.get(variable or "")
        if not secret:
            raise PermanentFailure(f"{self.config_path}: oauth2_client_secret_env names ${variable}, which is not set",
                                   connection=True)
        return {"client_id": self.smtp.oauth2_client_id, "client_secret": secret}

    def token(self) -> str:
        """The cached access token while it has five minutes left; else a refreshed one (saved)."""
        text = self.cache.read()
        data = json.loads(text) if text else {}
        if not data.get("refresh_token"):
            raise PermanentFailure(f"{self.place}: not signed in as {self.smtp.username!r}: run "
                                   "`announcer auth login`", connection=True)
        if data.get("access_token") and data.get("expires_at", 0) - time.time() > REFRESH_MARGIN:
            return data["access_token"]
        reply = _post(_endpoint(GOOGLE_TOKEN_URL, "/token"), {**self._client(), "grant_type": "refresh_token",
                                                              "refresh_token": data["refresh_token"]}, self.place)
        if "access_token" not in reply:
            raise _provider_error(self.place, reply)
        self._keep(data, reply)
        return reply["access_token"]

    def _keep(self, data: dict, reply: dict) -> None:
        data = {**data, "access_token": reply["access_token"],
                "expires_at": time.time() + float(reply.get("expires_in", 3600))}
        if reply.get("refresh_token"):
            data["refresh_token"] = reply["refresh_token"]
        self.cache.write(json.dumps(data))

    def login(self, say: Callable[[str], None]) -> str:
        """The device-code sign-in: show the code and address, poll until the person has signed in."""
        client = self._client()
        flow = _post(_endpoint(GOOGLE_DEVICE_URL, "/device/code"),
                     {"client_id": client["client_id"], "scope": GOOGLE_SCOPE}, self.place)
        if "device_code" not in flow:
            raise _login_error(self.place, flow)
        address = flow.get("verification_url") or flow.get("verification_uri")
        say(f"To sign in, open {address} and enter the code {flow['user_code']}")
        interval = float(flow.get("interval", 5))
        deadline = time.monotonic() + float(flow.get("expires_in", 1800))
        while time.monotonic() < deadline:
            reply = _post(_endpoint(GOOGLE_TOKEN_URL, "/token"),
                          {**client, "device_code": flow["device_code"],
                           "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}, self.place)
            if "access_token" in reply:
                self._keep({}, reply)
                return self.smtp.username
            if reply.get("error") == "slow_down":
                interval += 5
            elif reply.get("error") != "authorization_pending":
                raise _login_error(self.place, reply)
            time.sleep(interval)
        raise AnnouncerError(f"{self.place}: the code expired before the sign-in finished: run it again")

    def state(self) -> str:
        return self.cache.state()


def _unreachable(place: str, error: Exception) -> AnnouncerError:
    """MSAL's failures in one line: requests' errors (OSErrors) may pass; a ValueError is a wrong
    authority or tenant, which needs a person."""
    if isinstance(error, OSError):
        return TemporaryFailure(f"{place}: cannot reach the identity provider ({type(error).__name__})",
                                connection=True)
    reason = " ".join(str(error).split())
    return PermanentFailure(f"{place}: {reason[:300]}", connection=True)


def _post(url: str, fields: dict[str, str], place: str) -> dict:
    """POST a form, return the JSON answer (an OAuth error answer too); unreachable is temporary."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode("ascii"),
                                     headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # OAuth errors come as 400 or 401 with a JSON body
        try:
            return json.loads(error.read())
        except ValueError:
            return {"error": f"HTTP {error.code}"}
    except (OSError, ValueError) as error:
        raise TemporaryFailure(f"{place}: cannot reach {urllib.parse.urlsplit(url).netloc}: "
                               f"{getattr(error, 'reason', None) or type(error).__name__}", connection=True) from None


def _described(reply: dict) -> str:
    """An OAuth error answer in one line: its code and the first sentence of its description."""
    text = str(reply.get("error", "error"))
    description = " ".join(str(reply.get("error_description", "")).split())
    if description:
        text += ": " + description.split(". ")[0].split(" Trace ID")[0].rstrip(".")
    return text


def _provider_error(place: str, reply: dict) -> PermanentFailure:
    """A refresh the provider refused (expired or revoked sign-in): a connection failure, with what to do."""
    hint = f": {LOGIN_AGAIN}" if reply.get("error") in ("invalid_grant", "interaction_required") else ""
    return PermanentFailure(f"{place}: the token could not be refreshed ({_described(reply)}){hint}", connection=True)


def _login_error(place: str, reply: dict) -> AnnouncerError:
    return AnnouncerError(f"{place}: sign-in failed: {_described(reply)}")


def token_source(config: Config):
    """Where this configuration's OAuth2 access tokens come from."""
    smtp = config.smtp
    if smtp.oauth2_token_command:
        return CommandToken(config)
    return {"microsoft": MicrosoftToken, "google": GoogleToken}[smtp.oauth2_provider](config)


def sign_in(config: Config, say: Callable[[str], None]) -> str:
    """`announcer auth login`: the device-code sign-in of the configured provider; who signed in."""
    smtp = config.smtp
    if config.transport != "smtp" or smtp is None or smtp.auth != "oauth2" or not smtp.oauth2_provider:
        raise AnnouncerError(f'{config.path}: `auth login` needs [smtp] auth = "oauth2" with oauth2_provider '
                             '"microsoft" or "google"')
    try:
        return token_source(config).login(say)
    except DeliveryError as error:  # no pass to stop here: a sign-in that fails is one line, exit 1
        raise AnnouncerError(str(error)) from None
