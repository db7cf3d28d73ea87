"""Where the SMTP password comes from (SPEC 8.3): exactly one of password_env, password_command
(run without a shell, its first line) and keyring (the keyring package's own choice of backend,
here a real file backend picked by PYTHON_KEYRING_BACKEND), against a real STARTTLS server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from announcer.cli import app

from conftest import announcer_command, write_config
from smtp_server import PASSWORD, PASSWORD_ENV

runner = CliRunner()
TESTS = Path(__file__).parent
TALK = "title: First\nspeaker: Ada Lovelace\nstart: 2027-02-21 14:00\n"
DUE = "2027-02-15T15:00:00Z"


def series(tmp_path, server, **smtp):
    config = write_config(tmp_path, server, smtp={"password_env": None, **smtp})
    (tmp_path / "talks" / "a.yaml").write_text(TALK)
    return config


def helper(tmp_path, body: str) -> str:
    script = tmp_path / "pass helper"   # a space in its path: the config quotes it as a shell would
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o700)
    return str(script)


def run(config, *args):
    return runner.invoke(app, ["--config", str(config), *args])


def test_password_command_as_a_shell_string(tmp_path, smtp_starttls, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    script = helper(tmp_path, f'test "$1" = "mad seminar" || exit 9\necho "{PASSWORD}"\necho second-line')
    config = series(tmp_path, smtp_starttls, password_command=f"'{script}' 'mad seminar'")
    result = run(config, "send", "--due", "--now", DUE)
    assert result.exit_code == 0, result.output
    assert len(smtp_starttls.messages) == 1 and smtp_starttls.auth_attempts == 1
    shown = run(config, "log")
    written = result.output + shown.output + (tmp_path / "announcer.db").read_text(errors="replace")
    assert "announcement  sent" in shown.output and PASSWORD not in written


def test_password_command_as_a_list_of_words_runs_without_a_shell(tmp_path, smtp_starttls):
    seen = tmp_path / "argument.txt"
    script = helper(tmp_path, f'printf "%s" "$1" > "{seen}"\necho "{PASSWORD}"')
    config = series(tmp_path, smtp_starttls, password_command=[script, "$HOME; echo x"])
    result = run(config, "send", "--due", "--now", DUE)
    assert result.exit_code == 0, result.output
    assert seen.read_text() == "$HOME; echo x"   # no shell: the word reached the helper as written
    assert len(smtp_starttls.messages) == 1


def test_a_failing_or_silent_command_is_one_line_naming_it_never_its_output(tmp_path, smtp_starttls):
    failing = helper(tmp_path, "echo 'hunter2-Leaked'; echo 'hunter2-on-stderr' >&2; exit 3")
    config = series(tmp_path, smtp_starttls, password_command=[failing])
    result = run(config, "send", "--due", "--now", DUE)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"{config}: password_command: {failing!r} failed (exit status 3)"]
    assert "hunter2" not in result.output
    silent = helper(tmp_path, "echo")
    config = series(tmp_path, smtp_starttls, password_command=[silent])
    result = run(config, "send", "--due", "--now", DUE)
    assert result.stderr.splitlines() == [f"{config}: password_command: {silent!r} printed nothing on its first line"]
    config = series(tmp_path, smtp_starttls, password_command="no-such-helper-xyz --get")
    result = run(config, "send", "--due", "--now", DUE)
    assert result.stderr.splitlines() == [f"{config}: password_command: no such command 'no-such-helper-xyz'"]
    assert smtp_starttls.messages == [] and smtp_starttls.connections == 0


def test_keyring_with_the_backend_chosen_by_the_environment(tmp_path, smtp_starttls):
    store = tmp_path / "keyring.json"
    store.write_text(json.dumps({"announcer-smtp/mad": PASSWORD}))
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring", "TEST_KEYRING_FILE": str(store),
           "PYTHONPATH": str(TESTS)}
    env.pop(PASSWORD_ENV, None)
    config = series(tmp_path, smtp_starttls, keyring="announcer-smtp")
    done = subprocess.run([*announcer_command(), "--config", str(config), "send", "--due", "--now", DUE],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(smtp_starttls.messages) == 1 and PASSWORD not in done.stdout + done.stderr

    store.write_text("{}")
    config = series(tmp_path, smtp_starttls, keyring="other-service")
    done = subprocess.run([*announcer_command(), "--config", str(config), "send", "--due", "--now", DUE],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"{config}: keyring holds no password for service 'other-service', "
                                        "user 'mad' (store it with: keyring set other-service mad)"]


def test_two_sources_of_the_password_are_an_error_at_the_second_ones_line(tmp_path, smtp_starttls):
    config = series(tmp_path, smtp_starttls, password_env=PASSWORD_ENV, keyring="announcer-smtp")
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if text.startswith("keyring"))
    result = run(config, "check")
    assert result.exit_code == 1
    assert f'{config}:{line}: "keyring": give exactly one source of the password, not "password_env" and ' \
           '"keyring"' in result.stderr
    config = series(tmp_path, smtp_starttls)
    result = run(config, "check")
    assert '"username" needs a password: "password_env" (a variable), "password_command" or "keyring"' \
        in result.stderr
    config = series(tmp_path, smtp_starttls, username=None, keyring="announcer-smtp")
    assert '"keyring" needs "username"' in run(config, "check").stderr
    config = series(tmp_path, smtp_starttls, password_command="'unclosed")
    assert '"password_command": No closing quotation' in run(config, "check").stderr


def test_oauth2_keys_are_checked(tmp_path, smtp_starttls):
    config = series(tmp_path, smtp_starttls, auth="oauth2", oauth2_provider="google", oauth2_client_id="x")
    result = run(config, "check")
    assert 'oauth2_provider = "google" needs "oauth2_client_secret_env"' in result.stderr
    config = series(tmp_path, smtp_starttls, auth="oauth2", password_env=PASSWORD_ENV, oauth2_token_command="t")
    assert '"password_env" is a password: with auth = "oauth2"' in run(config, "check").stderr
    config = series(tmp_path, smtp_starttls, auth="oauth2")
    assert 'auth = "oauth2" needs exactly one of "oauth2_token_command" or "oauth2_provider"' \
        in run(config, "check").stderr
