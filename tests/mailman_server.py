"""A real GNU Mailman 3 core on 127.0.0.1 for the tests, and the relay that plays its mail server.

The path of a post: announcer --SMTP--> Relay --LMTP--> Mailman's LMTP runner -> Mailman's
rules and pipeline -> Mailman's out runner --SMTP--> a MailServer sink (smtp_server.py) that
collects the copies for the members; the prototype archiver keeps the list's archive as a
Maildir. Mailman runs from its own virtual environment (mailman_env.py), in a var folder of the
test's own with its own mailman.cfg, on free ports; the test drives it through its REST API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import mailbox
import os
import secrets
import signal
import smtplib
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP, Envelope, Session

from smtp_server import HOST, Received, _PortZeroController

T = TypeVar("T")
START_TIMEOUT = 120.0  # seconds for the master and its runners to come up (a busy 2-core machine)
STOP_TIMEOUT = 60.0
# The runners these tests need: the rest stay off (fewer processes on a small machine).
RUNNERS = ("in", "lmtp", "pipeline", "out", "archive", "rest")
IDLE_RUNNERS = ("bounces", "command", "digest", "retry", "task", "virgin")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (for servers that bind it themselves)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float,
             explain: Callable[[], str] = lambda: "") -> T:
    """Call `probe` until it returns something other than None or False; after `timeout` seconds,
    raise TimeoutError saying what was awaited, followed by `explain()` (e.g. Mailman's logs)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}\n{explain()}".rstrip())
        time.sleep(0.2)


class Relay:
    """An SMTP server on 127.0.0.1 that hands each message to Mailman over LMTP, as Postfix would.

    Its reply to the SMTP client is Mailman's reply to the LMTP delivery. It keeps what it was
    given (`received`): the posts exactly as announcer sent them.
    """

    def __init__(self, lmtp_port: int) -> None:
        self.host = HOST
        self.lmtp_port = lmtp_port
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.controller = _PortZeroController(self, hostname=HOST, port=0)

    @property
    def port(self) -> int:
        """The SMTP port announcer posts to."""
        return self.controller.port

    @property
    def received(self) -> list[Received]:
        """The posts handed on so far, oldest first."""
        with self._lock:
            return list(self._received)

    def start(self) -> Relay:
        """Start listening (in a thread of its own)."""
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self.controller.stop()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self._lock:
            self._received.append(Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), content,
                                           session.peer))
        return await asyncio.to_thread(self._deliver, envelope.mail_from or "", list(envelope.rcpt_tos), content)

    def _deliver(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> str:
        try:
            with smtplib.LMTP(HOST, self.lmtp_port, timeout=30) as lmtp:
                lmtp.sendmail(mail_from, rcpt_tos, content)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return f"{code} {text.decode(errors='replace')}"
        except smtplib.SMTPResponseException as error:
            return f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
        return "250 2.0.0 Handed to Mailman"


class MailmanCore:
    """Mailman's master and runners from `venv`, in `var_dir`, posting its copies to 127.0.0.1:`smtp_port`."""

    def __init__(self, venv: Path, var_dir: Path, smtp_port: int) -> None:
        self.venv = venv
        self.var_dir = var_dir
        self.smtp_port = smtp_port
        self.lmtp_port = free_port()
        self.rest_port = free_port()
        self.rest_user = "restadmin"
        self.rest_password = secrets.token_urlsafe(12)
        self.config_file = var_dir / "mailman.cfg"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        """mailman.cfg (and the REST server's gunicorn settings) for this var folder and these ports."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        gunicorn = self.var_dir / "gunicorn.cfg"
        # No control socket: gunicorn 25.1+ would otherwise make one in $HOME; quick shutdown.
        gunicorn.write_text("[gunicorn]\ncontrol_socket_disable = true\ngraceful_timeout = 2\n", encoding="utf-8")
        runners = "".join(f"[runner.{name}]\nsleep_time: 0.2s\n\n" for name in RUNNERS if name != "rest")
        idle = "".join(f"[runner.{name}]\nstart: no\n\n" for name in IDLE_RUNNERS)
        self.config_file.write_text(f"""\
[mailman]
site_owner: postmaster@example.org
layout: test

[paths.test]
var_dir: {self.var_dir}

[mta]
# Nothing to tell an MTA about new lists: the relay hands every post to LMTP.
incoming: mailman.mta.null.NullMTA
lmtp_host: {HOST}
lmtp_port: {self.lmtp_port}
smtp_host: {HOST}
smtp_port: {self.smtp_port}

[webservice]
hostname: {HOST}
port: {self.rest_port}
admin_user: {self.rest_user}
admin_pass: {self.rest_password}
workers: 1
configuration: {gunicorn}

[archiver.prototype]
enable: yes

{runners}{idle}""", encoding="utf-8")

    def start(self) -> None:
        """Start the master (which starts the runners) and wait until LMTP and REST answer.

        This is what `mailman start` does after its checks (it forks and execs `master`); run
        directly, the master stays this process's child, in a process group of its own.
        """
        self.write_config()
        log = (self.var_dir / "master.out").open("wb")
        self.process = subprocess.Popen(
            [str(self.venv / "bin" / "master"), "-C", str(self.config_file)], cwd=self.var_dir,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MAILMAN_VAR_DIR": str(self.var_dir)})
        log.close()
        wait_for("Mailman's REST API", self._rest_ready, START_TIMEOUT, self.logs)
        wait_for("Mailman's LMTP runner", self._lmtp_ready, START_TIMEOUT, self.logs)

    def stop(self) -> None:
        """`mailman stop`, wait for the master; then kill whatever is left of its process group."""
        if self.process is None:
            return
        try:
            if self.process.poll() is None:
                subprocess.run(self.command("stop"), capture_output=True, timeout=STOP_TIMEOUT)
                self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # runners whose master died first
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None

    def command(self, *args: str) -> list[str]:
        """A `mailman` command line for this instance (root is allowed: CI runs as root)."""
        return [str(self.venv / "bin" / "mailman"), "-C", str(self.config_file), "--run-as-root", *args]

    def logs(self) -> str:
        """The end of Mailman's logs, to explain a failure."""
        parts = []
        for path in [self.var_dir / "master.out", *sorted((self.var_dir / "logs").glob("*.log"))]:
            if path.is_file():
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
                parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def _rest_ready(self) -> bool:
        self._check_alive()
        try:
            return self.rest("GET", "system/versions")["api_version"] == "3.1"
        except (OSError, urllib.error.URLError):
            return False

    def _lmtp_ready(self) -> bool:
        self._check_alive()
        try:
            with smtplib.LMTP(HOST, self.lmtp_port, timeout=5) as lmtp:
                return lmtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"Mailman's master exited with {self.process.returncode}\n{self.logs()}")

    # REST API (https://docs.mailman3.org/projects/mailman/en/latest/src/mailman/rest/docs/rest.html)

    def rest(self, method: str, path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call the REST API (version 3.1) and return its JSON answer ({} for an empty one)."""
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(f"http://{HOST}:{self.rest_port}/3.1/{path}", data=body, method=method)
        token = base64.b64encode(f"{self.rest_user}:{self.rest_password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}") from None
        return json.loads(text) if text else {}

    def create_list(self, address: str, members: list[str], **settings: Any) -> str:
        """A list at `address` (its domain made if new) with these members, subscribed without
        confirmations; `settings` go to its configuration. Returns the list's id."""
        domain = address.split("@")[1]
        domains = [d["mail_host"] for d in self.rest("GET", "domains").get("entries", [])]
        if domain not in domains:
            self.rest("POST", "domains", {"mail_host": domain})
        self.rest("POST", "lists", {"fqdn_listname": address})
        list_id = address.replace("@", ".")
        for member in members:
            self.rest("POST", "members", {"list_id": list_id, "subscriber": member, "pre_verified": True,
                                          "pre_confirmed": True, "pre_approved": True,
                                          "send_welcome_message": False})
        if settings:
            self.rest("PATCH", f"lists/{list_id}/config", settings)
        self.rest("PATCH", f"lists/{list_id}/archivers", {"prototype": True})
        return list_id

    def held(self, list_id: str) -> list[dict[str, Any]]:
        """The list's posts held for moderation."""
        return self.rest("GET", f"lists/{list_id}/held").get("entries", [])

    def archive(self, list_address: str) -> list[EmailMessage]:
        """The prototype archiver's copies of the list's posts, in the order it archived them."""
        folder = self.var_dir / "archives" / "prototype" / list_address
        if not folder.is_dir():
            return []
        box = mailbox.Maildir(folder, factory=None, create=False)
        return [message_from_bytes(box.get_bytes(key), policy=policy.default)  # type: ignore[misc]
                for key in sorted(box.keys(), key=_delivery_time)]


def _delivery_time(key: str) -> tuple[int, int]:
    """When a message was added to a Maildir, from its key: "SECONDS.MMICROSECONDSP..." (mailbox.Maildir)."""
    seconds, unique = key.split(".")[:2]
    return int(seconds), int(unique[1:unique.index("P")])
