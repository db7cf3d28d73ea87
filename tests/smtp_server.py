"""Real aiosmtpd servers on 127.0.0.1 for the tests: TLS from a trustme CA, AUTH, and injected faults."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
import threading
import time
import weakref
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
USERNAME = "mad"
PASSWORD = "s3cret-Test-Passw0rd"
PASSWORD_ENV = "ANNOUNCER_SMTP_PASSWORD"
# What Gmail sends (base64 in a 334) when it rejects an OAuth2 token.
GOOGLE_CHALLENGE = json.dumps({"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"})


@dataclass(frozen=True)
class Received:
    """One message as the server stored it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    peer: tuple[str, int]  # the client's address and port: one per connection

    def message(self) -> EmailMessage:
        """The content parsed back into an EmailMessage."""
        return message_from_bytes(self.content, policy=policy.SMTP)  # type: ignore[return-value]


@dataclass
class _Fault:
    stage: str  # "rcpt", "data", "drop" (store, then close without a reply) or "stall" (store, then wait)
    remaining: int
    reply: str = ""
    address: str | None = None
    seconds: float = 0.0


class _PortZeroController(Controller):
    """A Controller that binds a free port chosen by the OS (no race between picking and binding)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class MailServer:
    """An SMTP server on 127.0.0.1 that records what it receives and fails on demand.

    security is "starttls" (STARTTLS required, AUTH required and only after TLS), "tls"
    (implicit TLS, AUTH required) or "none" (plain, no AUTH). Faults apply to the next
    `count` messages (mail transactions) and may be set while the server runs.
    """

    def __init__(self, security: str, ca: trustme.CA | None = None, ca_file: Path | None = None,
                 password: str = PASSWORD, oauth2: str | None = None, mechanisms: tuple[str, ...] = ()) -> None:
        self.host = HOST
        self.security = security
        self.username = USERNAME if security != "none" else None
        self.password = password if security != "none" else None
        self.auth_attempts = 0  # AUTH commands that reached the authenticator
        self.ca_file = ca_file if security != "none" else None
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._peers: set[tuple[str, int]] = set()
        self._live: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._fault: _Fault | None = None
        self._running = False
        # OAuth2 (SPEC 8.3): oauth2 is "microsoft" or "google", how a rejected token is answered;
        # mechanisms, the SASL mechanisms offered (default: PLAIN and LOGIN, or both OAuth2 ones).
        self.oauth2 = oauth2
        self.tokens: set[str] = set()          # the access tokens accepted right now
        self.sasl: list[tuple[str, bytes]] = []  # every OAuth2 initial response, decoded, as received
        self.sasl_replies: list[bytes] = []      # what the client answered a 334 error challenge
        offered = mechanisms or (("XOAUTH2", "OAUTHBEARER") if oauth2 else ("PLAIN", "LOGIN"))
        # aiosmtpd takes every auth_* member of the handler for a mechanism: auth_attempts is not one.
        excluded = {"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"} - set(offered) | {"attempts"}
        self.controller = _PortZeroController(self, hostname=HOST, port=0, server_hostname="localhost",
                                              auth_exclude_mechanism=excluded,
                                              **self._tls_options(security, ca, self._check_password))

    @staticmethod
    def _tls_options(security: str, ca: trustme.CA | None, authenticator: Any) -> dict[str, Any]:
        if security == "none":
            return {}
        assert ca is not None, "a TLS server needs a CA"
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", HOST).configure_cert(context)
        auth = {"auth_required": True, "authenticator": authenticator}
        if security == "starttls":
            return {"tls_context": context, "require_starttls": True, "auth_require_tls": True, **auth}
        # aiosmtpd only counts STARTTLS as TLS, so AUTH must be allowed "without" it here (aiosmtpd #281).
        return {"ssl_context": context, "auth_require_tls": False, **auth}

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.controller.port

    def start(self) -> MailServer:
        """Start listening (in a thread of its own)."""
        self.controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop listening and end every open session (once; a stopped server cannot restart)."""
        if self._running:
            self.controller.stop()
            self._running = False

    @property
    def messages(self) -> list[Received]:
        """The messages received so far, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """How many client connections said EHLO (the start-up probe does not count)."""
        with self._lock:
            return len(self._peers)

    def fail(self, stage: str, code: int, count: int = 1, address: str | None = None) -> None:
        """Reply `code` at "rcpt" (only to `address`, if given) or "data" for the next `count` messages."""
        if stage not in ("rcpt", "data"):
            raise ValueError(f"stage must be 'rcpt' or 'data', not {stage!r}")
        status = {4: "4.3.0 Injected temporary failure", 5: "5.7.1 Injected permanent failure"}[code // 100]
        self._set(_Fault(stage, count, reply=f"{code} {status}", address=address))

    def drop_after_data(self, count: int = 1) -> None:
        """For the next `count` messages, store the message, then close the connection without replying."""
        self._set(_Fault("drop", count))

    def stall_after_data(self, seconds: float, count: int = 1) -> None:
        """For the next `count` messages, store the message, then wait `seconds` before replying 250."""
        self._set(_Fault("stall", count, seconds=seconds))

    def disconnect_clients(self) -> None:
        """Close every open client connection, as a server does with idle ones."""
        async def close_all() -> None:
            for session in list(self._live):
                if session.transport is not None:
                    session.transport.close()

        asyncio.run_coroutine_threadsafe(close_all(), self.controller.loop).result(timeout=5)
        time.sleep(0.1)  # let the closes reach the clients

    def reset(self) -> None:
        """Forget received messages, connections and faults."""
        with self._lock:
            self._messages.clear()
            self._peers.clear()
            self._fault = None

    def _set(self, fault: _Fault) -> None:
        with self._lock:
            self._fault = fault

    def _fault_for(self, envelope: Envelope) -> _Fault | None:
        """The fault this mail transaction gets: decided once, on its first RCPT."""
        if not hasattr(envelope, "fault"):
            with self._lock:
                fault = self._fault if self._fault and self._fault.remaining > 0 else None
                if fault:
                    fault.remaining -= 1
            envelope.fault = fault  # type: ignore[attr-defined]
        return envelope.fault  # type: ignore[attr-defined]

    def _check_password(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                        auth_data: Any) -> AuthResult:
        """Accept USERNAME/password (compared as UTF-8); handled=False makes aiosmtpd reply 535 to a wrong one."""
        with self._lock:
            self.auth_attempts += 1
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USERNAME.encode()
              and auth_data.password == (self.password or "").encode("utf-8"))
        return AuthResult(success=ok, handled=False)

    def expected_sasl(self, mechanism: str, token: str) -> bytes:
        """The exact initial response a client must send for `token` (XOAUTH2, or RFC 7628 OAUTHBEARER)."""
        if mechanism == "XOAUTH2":
            return f"user={USERNAME}\x01auth=Bearer {token}\x01\x01".encode()
        return f"n,a={USERNAME},\x01host={HOST}\x01port={self.port}\x01auth=Bearer {token}\x01\x01".encode()

    async def _oauth2(self, server: SMTP, mechanism: str, args: list[str]) -> AuthResult:
        """Accept a known token, sent byte for byte as expected; answer a bad one as Microsoft or Google do."""
        with self._lock:
            self.auth_attempts += 1
        if len(args) < 2:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Initial response required")
        try:
            raw = base64.b64decode(args[1], validate=True)
        except binascii.Error:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode base64")
        self.sasl.append((mechanism, raw))
        if any(raw == self.expected_sasl(mechanism, token) for token in self.tokens):
            return AuthResult(success=True, auth_data=USERNAME)
        if self.oauth2 == "google":  # RFC 7628 3.2.2: an error challenge, then 535 after the client's reply
            reply = await server.challenge_auth(GOOGLE_CHALLENGE)
            self.sasl_replies.append(reply if isinstance(reply, bytes) else b"*")
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Username and Password not accepted")
        return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._oauth2(server, "XOAUTH2", args)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._oauth2(server, "OAUTHBEARER", args)

    # aiosmtpd handler hooks

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        with self._lock:
            self._peers.add(session.peer)
        self._live.add(server)
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        fault = self._fault_for(envelope)
        if fault and fault.stage == "rcpt" and fault.address in (None, address):
            return fault.reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self._fault_for(envelope)
        if fault and fault.stage == "data":
            return fault.reply
        content = envelope.original_content or b""
        with self._lock:
            self._messages.append(Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), content,
                                           session.peer))
        if fault and fault.stage == "drop":
            server.transport.close()  # the client never hears that the message was accepted
        elif fault and fault.stage == "stall":
            await asyncio.sleep(fault.seconds)
        return "250 2.0.0 Message accepted"


def write_ca(ca: trustme.CA, folder: Path) -> Path:
    """Write the CA certificate as PEM (for `ca_file`) and return its path."""
    path = folder / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path
