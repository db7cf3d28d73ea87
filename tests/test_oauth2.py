"""OAuth2 for SMTP (SPEC 8.3, 8.5): XOAUTH2 and OAUTHBEARER against a real aiosmtpd server over
STARTTLS that checks the SASL strings byte for byte and rejects a bad token as Microsoft or Google
do; tokens from a command or from the built-in providers, refreshed against a real local HTTPS
identity provider (tests/identity_provider.py); a token that changes under a running daemon."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from announcer.cli import app
from announcer.deliver.ledger import SqliteLedger
from announcer.deliver.oauth2 import ENDPOINT_ENV, challenge_reason, oauthbearer, xoauth2

from conftest import write_config
from daemon_process import RECENT, local_minute, wait_until
from identity_provider import IdentityProvider
from smtp_server import GOOGLE_CHALLENGE, MailServer

runner = CliRunner()
TALK = "title: {title}\nspeaker: {{name: Ada Lovelace, affiliation: Analytical Engines}}\nstart: {start}\n"
BOTH_DUE = "2027-02-15T15:00:00Z"
CLIENT_SECRET = "google-client-Secret-9dK"


def series(tmp_path, server, **smtp):
    config = write_config(tmp_path, server, smtp={"password_env": None, "auth": "oauth2", **smtp})
    (tmp_path / "talks" / "a.yaml").write_text(TALK.format(title="First", start="2027-02-21 14:00"))
    (tmp_path / "talks" / "b.yaml").write_text(TALK.format(title="Second", start="2027-02-22 14:00"))
    return config


def token_command(tmp_path, token: str) -> list[str]:
    """A real helper: a script that prints the token kept in a file (which a test may change)."""
    (tmp_path / "token.txt").write_text(token + "\n")
    script = tmp_path / "get-token"
    script.write_text(f"#!{sys.executable}\nimport pathlib, sys\n"
                      f"print(pathlib.Path({str(tmp_path / 'token.txt')!r}).read_text().strip())\n"
                      "print('second line, ignored')\n")
    script.chmod(0o700)
    return [str(script)]


def run(config, *args):
    return runner.invoke(app, ["--config", str(config), *args])


def states(tmp_path):
    if not (tmp_path / "announcer.db").exists():
        return {}
    with SqliteLedger(tmp_path / "announcer.db") as ledger:
        return {key: record.state for key, record in ledger.records().items()}


def reasons(result) -> list[str]:
    """The lines on stderr, without the time of the next login try that a stopped pass adds."""
    return [line.split(" (login not tried again before")[0] for line in result.stderr.splitlines()]


def written_bytes(tmp_path, *outputs: str) -> bytes:
    """Every byte announcer wrote: the outputs given, and every file in the folder but the token
    cache and the helpers that hold a token by design."""
    kept = {"token.txt", "announcer.db.tokens.json"}
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name not in kept)
    return "".join(outputs).encode() + files


@pytest.fixture
def oauth_server(request, trustme_ca, smtp_ca):
    style, mechanisms = getattr(request, "param", ("microsoft", ()))
    server = MailServer("starttls", trustme_ca, smtp_ca, oauth2=style, mechanisms=mechanisms).start()
    yield server
    server.stop()


@pytest.fixture
def provider(trustme_ca, smtp_ca, monkeypatch):
    """The local identity provider; announcer (and MSAL) pointed at it and trusting its certificate."""
    with IdentityProvider(trustme_ca) as idp:
        monkeypatch.setenv(ENDPOINT_ENV, idp.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(smtp_ca))   # MSAL (requests)
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp_ca))        # urllib (Google)
        yield idp


def test_the_sasl_strings_are_exactly_those_of_xoauth2_and_rfc_7628():
    import base64

    assert base64.b64decode(xoauth2("mad@example.edu", "tok")) == b"user=mad@example.edu\x01auth=Bearer tok\x01\x01"
    assert base64.b64decode(oauthbearer("mad@example.edu", "smtp.example.edu", 587, "tok")) == \
        b"n,a=mad@example.edu,\x01host=smtp.example.edu\x01port=587\x01auth=Bearer tok\x01\x01"
    encoded = base64.b64encode(GOOGLE_CHALLENGE.encode()).decode()
    assert challenge_reason(encoded) == "status 400, schemes Bearer, scope https://mail.google.com/"


def test_a_token_command_logs_in_with_xoauth2(tmp_path, oauth_server):
    token = "ya29.token-From-Command-1"
    oauth_server.tokens = {token}
    config = series(tmp_path, oauth_server, oauth2_token_command=token_command(tmp_path, token))
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 0, result.output
    assert len(oauth_server.messages) == 2 and oauth_server.auth_attempts == 1
    assert oauth_server.sasl == [("XOAUTH2", oauth_server.expected_sasl("XOAUTH2", token))]
    assert token.encode() not in written_bytes(tmp_path, result.output)


@pytest.mark.parametrize("oauth_server", [("microsoft", ("OAUTHBEARER",))], indirect=True)
def test_oauthbearer_where_only_that_is_offered(tmp_path, oauth_server):
    token = "bearer-Only-Token-2"
    oauth_server.tokens = {token}
    config = series(tmp_path, oauth_server, oauth2_token_command=token_command(tmp_path, token))
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 0, result.output
    expected = f"n,a=mad,\x01host=127.0.0.1\x01port={oauth_server.port}\x01auth=Bearer {token}\x01\x01"
    assert oauth_server.sasl == [("OAUTHBEARER", expected.encode())]
    assert len(oauth_server.messages) == 2


def test_a_token_rejected_as_microsoft_does_fails_no_message(tmp_path, oauth_server):
    oauth_server.tokens = {"the-good-one"}
    config = series(tmp_path, oauth_server, oauth2_token_command=token_command(tmp_path, "stale-Token-3"))
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    assert reasons(result) == [
        f"stopped: 127.0.0.1:{oauth_server.port}: token rejected for 'mad' (XOAUTH2): "
        "535 5.7.3 Authentication unsuccessful"]
    assert states(tmp_path) == {} and oauth_server.messages == []
    shown = run(config, "plan", "--now", BOTH_DUE)
    assert "due: 127.0.0.1:" in shown.stdout and "token rejected for 'mad'" in shown.stdout
    again = run(config, "send", "--due", "--now", BOTH_DUE)  # the same token source: not tried for an hour
    assert again.exit_code == 3 and "login not tried again before" in again.stderr
    assert oauth_server.auth_attempts == 1
    assert b"stale-Token-3" not in written_bytes(tmp_path, result.output, again.output)


@pytest.mark.parametrize("oauth_server", [("google", ()), ("google", ("OAUTHBEARER",))], indirect=True)
def test_a_token_rejected_as_google_does_is_decoded_into_one_line(tmp_path, oauth_server):
    config = series(tmp_path, oauth_server, oauth2_token_command=token_command(tmp_path, "expired-Token-4"))
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    [mechanism] = {m for m, _ in oauth_server.sasl}
    assert reasons(result) == [
        f"stopped: 127.0.0.1:{oauth_server.port}: token rejected for 'mad' ({mechanism}): "
        "535 5.7.8 Username and Password not accepted "
        "(status 400, schemes Bearer, scope https://mail.google.com/)"]
    # The client acknowledges the error challenge as each mechanism says: empty, or RFC 7628's ^A.
    assert oauth_server.sasl_replies == [b"" if mechanism == "XOAUTH2" else b"\x01"]
    assert states(tmp_path) == {} and oauth_server.messages == []


def test_a_failing_token_command_is_one_line_without_its_output(tmp_path, oauth_server):
    script = tmp_path / "broken-helper"
    script.write_text("#!/bin/sh\necho 'leaked-Secret-Output'\nexit 4\n")
    script.chmod(0o700)
    config = series(tmp_path, oauth_server, oauth2_token_command=f"{script} --account 'mad seminar'")
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    assert reasons(result) == [f"stopped: {config}: oauth2_token_command: {str(script)!r} failed "
                                          "(exit status 4)"]
    assert "leaked-Secret-Output" not in result.output and states(tmp_path) == {}
    assert oauth_server.auth_attempts == 0


def microsoft(tmp_path, server, **extra):
    return series(tmp_path, server, oauth2_provider="microsoft", oauth2_client_id="client-id-123",
                  oauth2_tenant="contoso.example", **extra)


def test_microsoft_sign_in_keeps_a_private_cache_and_tokens_refresh_before_they_expire(
        tmp_path, oauth_server, provider):
    provider.on_token = oauth_server.tokens.add
    provider.expires_in = 120  # inside the five minutes before expiry: every pass refreshes
    config = microsoft(tmp_path, oauth_server)
    login = run(config, "auth", "login")
    assert login.exit_code == 0, login.output
    assert "enter the code WDJB-MJHT" in login.stderr
    cache = tmp_path / "announcer.db.tokens.json"
    assert login.stdout == f"signed in as mad; the token is kept in {cache} (readable by you only)\n"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert any(path.endswith("/contoso.example/oauth2/v2.0/devicecode") for path, _ in provider.requests)
    assert [f["scope"].split()[0] for p, f in provider.requests if p.endswith("devicecode")] == \
        ["https://outlook.office.com/SMTP.Send"]

    first = run(config, "send", "--due", "--now", "2027-02-14T14:00:00Z")   # a's announcement
    assert first.exit_code == 0, first.output
    second = run(config, "send", "--due", "--now", BOTH_DUE)               # b's, a pass later
    assert second.exit_code == 0, second.output
    assert len(oauth_server.messages) == 2
    used = [raw for _, raw in oauth_server.sasl]
    # Each pass logged in with a token newer than the last (refreshed with the refresh token).
    assert used == [oauth_server.expected_sasl("XOAUTH2", token) for token in provider.issued[1:3]]
    assert [f["grant_type"] for p, f in provider.requests if p.endswith("/token")][1:] == ["refresh_token"] * 2
    secrets = provider.issued + sorted(provider.refresh_tokens)
    everything = written_bytes(tmp_path, login.output, first.output, second.output)
    assert not [s for s in secrets if s.encode() in everything]


def test_a_refreshed_token_the_server_rejects_waits_an_hour_under_the_token_sources_fingerprint(
        tmp_path, oauth_server, provider):
    provider.expires_in = 120  # every pass refreshes (and rewrites the cache) before it logs in
    config = microsoft(tmp_path, oauth_server)
    assert run(config, "auth", "login").exit_code == 0
    first = run(config, "send", "--due", "--now", BOTH_DUE)
    assert first.exit_code == 3 and "535 5.7.3 Authentication unsuccessful" in first.stderr
    assert oauth_server.auth_attempts == 1 and states(tmp_path) == {}
    shown = run(config, "plan", "--now", BOTH_DUE)
    assert "due: 127.0.0.1:" in shown.stdout and "token rejected for 'mad' (XOAUTH2)" in shown.stdout
    again = run(config, "send", "--due", "--now", BOTH_DUE)
    assert again.exit_code == 3 and "login not tried again before" in again.stderr
    assert oauth_server.auth_attempts == 1   # the same sign-in: no second login within the hour
    preview = run(config, "preview", "--out", str(tmp_path / "previews"), "--now", BOTH_DUE)
    assert preview.exit_code == 0, preview.output
    secrets = provider.issued + sorted(provider.refresh_tokens)
    everything = written_bytes(tmp_path, first.output, shown.output, again.output, preview.output)
    assert len(list((tmp_path / "previews").iterdir())) == 4
    assert not [s for s in secrets if s.encode() in everything]


def test_an_expired_microsoft_sign_in_asks_for_auth_login_again(tmp_path, oauth_server, provider):
    provider.expires_in = 60
    config = microsoft(tmp_path, oauth_server)
    assert run(config, "auth", "login").exit_code == 0
    provider.refresh_expired = True
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    assert reasons(result) == [
        f"stopped: {config}: oauth2_provider microsoft: the token could not be refreshed (invalid_grant: "
        "AADSTS700082: The refresh token has expired due to inactivity): run `announcer auth login` again"]
    assert states(tmp_path) == {} and oauth_server.auth_attempts == 0 and oauth_server.messages == []

    provider.refresh_expired = False  # signed in again: the cache changed, so the next pass tries at once
    provider.on_token = oauth_server.tokens.add
    assert run(config, "auth", "login").exit_code == 0
    fixed = run(config, "send", "--due", "--now", BOTH_DUE)
    assert fixed.exit_code == 0, fixed.output
    assert len(oauth_server.messages) == 2


def test_a_token_cache_that_others_can_read_is_refused(tmp_path, oauth_server, provider):
    config = microsoft(tmp_path, oauth_server)
    assert run(config, "auth", "login").exit_code == 0
    cache = tmp_path / "announcer.db.tokens.json"
    cache.chmod(0o644)
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    assert f"{cache}: the token cache can be read by others (mode 644): refusing to use it" in result.stderr
    assert oauth_server.messages == [] and states(tmp_path) == {}


def google(tmp_path, server, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
    return series(tmp_path, server, oauth2_provider="google", oauth2_client_id="client-id-123",
                  oauth2_client_secret_env="GOOGLE_CLIENT_SECRET")


def test_google_sign_in_and_refresh_over_https(tmp_path, oauth_server, provider, monkeypatch):
    provider.on_token = oauth_server.tokens.add
    config = google(tmp_path, oauth_server, monkeypatch)
    login = run(config, "auth", "login")
    assert login.exit_code == 0, login.output
    assert "open https://www.google.com/device and enter the code WDJB-MJHT" in login.stderr
    [(_, device)] = [(p, f) for p, f in provider.requests if p == "/device/code"]
    assert device == {"client_id": "client-id-123", "scope": "https://mail.google.com/"}
    cache = tmp_path / "announcer.db.tokens.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600

    first = run(config, "send", "--due", "--now", "2027-02-14T14:00:00Z")  # the token from sign-in, still fresh
    assert first.exit_code == 0, first.output
    assert oauth_server.sasl[-1][1] == oauth_server.expected_sasl("XOAUTH2", provider.issued[0])
    provider.expires_in = 3600
    kept = json.loads(cache.read_text())
    cache.write_text(json.dumps({**kept, "expires_at": time.time() + 60}))  # a minute left: refreshed first
    second = run(config, "send", "--due", "--now", BOTH_DUE)
    assert second.exit_code == 0, second.output
    refresh = [f for p, f in provider.requests if p == "/token" and f.get("grant_type") == "refresh_token"]
    assert refresh and refresh[0]["client_secret"] == CLIENT_SECRET
    assert oauth_server.sasl[-1][1] == oauth_server.expected_sasl("XOAUTH2", provider.issued[1])
    assert len(oauth_server.messages) == 2
    secrets = [CLIENT_SECRET, *provider.issued, *provider.refresh_tokens]
    everything = written_bytes(tmp_path, login.output, first.output, second.output)
    assert not [s for s in secrets if s.encode() in everything]


def test_an_expired_google_sign_in_asks_for_auth_login_again(tmp_path, oauth_server, provider, monkeypatch):
    provider.expires_in = 10
    config = google(tmp_path, oauth_server, monkeypatch)
    assert run(config, "auth", "login").exit_code == 0
    provider.refresh_expired = True
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    assert reasons(result)[0].endswith("run `announcer auth login` again")
    assert "invalid_grant" in result.stderr and states(tmp_path) == {}


def test_a_google_sign_in_without_the_client_secret_is_one_line(tmp_path, oauth_server, provider, monkeypatch):
    config = google(tmp_path, oauth_server, monkeypatch)
    monkeypatch.delenv("GOOGLE_CLIENT_SECRET")
    result = run(config, "auth", "login")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"{config}: oauth2_client_secret_env names $GOOGLE_CLIENT_SECRET, "
                                          "which is not set"]
    assert provider.requests == [] and not (tmp_path / "announcer.db.tokens.json").exists()


def test_auth_login_needs_a_provider(tmp_path, oauth_server):
    config = series(tmp_path, oauth_server, oauth2_token_command=["true"])
    result = run(config, "auth", "login")
    assert result.exit_code == 1
    assert reasons(result) == [f'{config}: `auth login` needs [smtp] auth = "oauth2" with '
                                          'oauth2_provider "microsoft" or "google"']


def test_a_token_that_changes_while_the_daemon_runs_needs_no_restart(tmp_path, oauth_server, start_daemon):
    oauth_server.tokens = {"first-Token-A"}
    command = token_command(tmp_path, "first-Token-A")
    now = datetime.now(timezone.utc)
    config = write_config(tmp_path, oauth_server, messages=RECENT,
                          smtp={"password_env": None, "auth": "oauth2", "oauth2_token_command": command})
    start = local_minute(now + timedelta(days=2))
    (tmp_path / "talks" / "a.yaml").write_text(TALK.format(title="First", start=start))
    daemon = start_daemon(config, env={**os.environ})
    wait_until(lambda: len(oauth_server.messages) == 1, timeout=20, what="the first announcement")

    # The helper now hands out a new token, and the old one stops working (as on expiry).
    (tmp_path / "token.txt").write_text("second-Token-B\n")
    oauth_server.tokens = {"second-Token-B"}
    (tmp_path / "talks" / "b.yaml").write_text(TALK.format(title="Second", start=start))
    wait_until(lambda: len(oauth_server.messages) == 2, timeout=20, what="the second announcement")
    assert [raw for _, raw in oauth_server.sasl] == [oauth_server.expected_sasl("XOAUTH2", t)
                                                       for t in ("first-Token-A", "second-Token-B")]
    assert daemon.proc.poll() is None
    daemon.proc.terminate()
    daemon.proc.wait(10)
    assert not [t for t in (b"first-Token-A", b"second-Token-B")
                if t in written_bytes(tmp_path, daemon.log)]


def test_an_unreachable_identity_provider_is_a_temporary_connection_failure(
        tmp_path, oauth_server, provider, closed_port, monkeypatch):
    provider.expires_in = 60
    config = microsoft(tmp_path, oauth_server)
    assert run(config, "auth", "login").exit_code == 0
    monkeypatch.setenv(ENDPOINT_ENV, f"https://127.0.0.1:{closed_port}")
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert reasons(result) == [f"stopped: {config}: oauth2_provider microsoft: cannot reach the identity "
                               "provider (ConnectionError)"]
    assert oauth_server.auth_attempts == 0 and oauth_server.messages == []
    assert states(tmp_path) == {"a/announcement": "retry"}   # like a refused connection: retried, the pass stopped


@pytest.mark.parametrize("oauth_server", [("microsoft", ("PLAIN",))], indirect=True)
def test_a_server_without_oauth2_is_a_connection_failure_and_no_token_is_fetched(tmp_path, oauth_server):
    config = series(tmp_path, oauth_server, oauth2_token_command=[sys.executable, "-c", "raise SystemExit(5)"])
    result = run(config, "send", "--due", "--now", BOTH_DUE)
    assert result.exit_code == 3
    assert reasons(result) == [f"stopped: 127.0.0.1:{oauth_server.port}: the server offers no OAuth2 login "
                               "(it offers PLAIN; announcer speaks XOAUTH2 and OAUTHBEARER)"]
    assert oauth_server.auth_attempts == 0 and states(tmp_path) == {}
