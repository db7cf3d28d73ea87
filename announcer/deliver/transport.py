"""Where messages go: an SMTP server, a local Maildir, or nowhere (dry runs)."""

from __future__ import annotations

import base64
import mailbox
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from announcer.compose.mime import wire_bytes
from announcer.errors import DeliveryError, PermanentFailure, TemporaryFailure, UncertainDelivery

if TYPE_CHECKING:
    from announcer.sources.config import Config, Smtp

_LINE_START_DOT = re.compile(rb"^\.", re.MULTILINE)


class Transport(Protocol):
    """Takes messages one at a time; `with` opens it for a pass and closes it after."""

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def send(self, message: EmailMessage) -> None:
        """Deliver one message, or raise TemporaryFailure, PermanentFailure or UncertainDelivery."""

    def describe(self) -> str:
        """Where messages go, in a few words for logs and dry runs."""


class _Lost(Exception):
    """The connection went away before the message data was sent: nothing was delivered."""


class SmtpTransport:
    """Posts messages over one SMTP connection, opened on the first send and kept for the pass."""

    def __init__(self, settings: Smtp, password: str | None, tokens=None) -> None:
        self.settings = settings
        self._password = password
        self._tokens = tokens   # with auth = "oauth2": where each connection's access token comes from
        self._place = f"{settings.host}:{settings.port}"
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> str:
        """The server, its security and the login name (never the password)."""
        security = {"starttls": "STARTTLS", "tls": "TLS", "none": "no TLS"}[self.settings.security]
        user = f", user {self.settings.username!r}" if self.settings.username else ""
        return f"SMTP {self._place} ({security}{user})"

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def send(self, message: EmailMessage) -> None:
        """Deliver one message to the From/To envelope; raise a DeliveryError saying why not."""
        sender, recipients = _envelope(message, self._place)
        data = wire_bytes(message)
        for _ in range(2):
            reused = self._smtp is not None
            try:
                self._transact(self._smtp or self._connect(), sender, recipients, data)
                return
            except _Lost as lost:
                self._discard()
                if not reused:
                    raise TemporaryFailure(f"{self._place}: connection lost before the message was sent "
                                           f"({lost})") from None
                # The server closed the connection while it sat idle between messages: reconnect once.
            finally:
                if self._smtp is not None and self._smtp.sock is None:
                    self._smtp = None

    def _connect(self) -> smtplib.SMTP:
        settings, place = self.settings, self._place
        if settings.username and settings.security == "none":
            raise PermanentFailure(f'{place}: refusing to send the password for {settings.username!r} '
                                   'without TLS (set security to "starttls" or "tls")', connection=True)
        if settings.username and self._password is None and settings.auth == "password":
            hint = f" (set ${settings.password_env})" if settings.password_env else ""
            raise PermanentFailure(f"{place}: no password for {settings.username!r}{hint}", connection=True)
        context = self._tls_context() if settings.security != "none" else None
        smtp: smtplib.SMTP | None = None
        step = "connect"
        try:
            if settings.security == "tls":
                smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            if settings.security == "starttls":
                step = "STARTTLS"
                smtp.starttls(context=context)
            if settings.username:
                step = "AUTH"
                self._login(smtp)
            step = "EHLO"
            smtp.ehlo_or_helo_if_needed()
        except (smtplib.SMTPException, OSError) as error:
            if smtp is not None:
                smtp.close()
            raise self._setup_failure(step, error) from error
        except DeliveryError:
            if smtp is not None:
                smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def login_settings(self) -> tuple[str, str | None]:
        """What a login depends on, the settings and the secret (for OAuth2, the token source's state),
        for logins.fingerprint (never shown)."""
        if self._tokens is not None:
            return repr(self.settings), self._tokens.state()
        return repr(self.settings), self._password

    def _login(self, smtp: smtplib.SMTP) -> None:
        """One AUTH command, PLAIN (else LOGIN), with the user name and password as UTF-8.

        smtplib's login() encodes them as ASCII (a password like "pässwörd" raised an error that
        named its characters), and after a refusal tries the next mechanism with the same secret,
        which counts as a second failed login against the account.
        """
        smtp.ehlo_or_helo_if_needed()
        if not smtp.has_extn("auth"):
            raise smtplib.SMTPNotSupportedError("the server does not offer AUTH")
        offered = smtp.esmtp_features["auth"].upper().split()
        if self.settings.auth == "oauth2":
            return self._login_oauth2(smtp, offered)
        user = self.settings.username.encode("utf-8")
        secret = (self._password or "").encode("utf-8", "surrogateescape")  # the bytes as the environment held them

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        if "PLAIN" in offered:
            code, reply = smtp.docmd("AUTH", "PLAIN " + b64(b"\0" + user + b"\0" + secret))
        elif "LOGIN" in offered:
            code, reply = smtp.docmd("AUTH", "LOGIN " + b64(user))
            if code == 334:
                code, reply = smtp.docmd(b64(secret))
        else:
            raise PermanentFailure(f"{self._place}: the server offers no login method announcer knows "
                                   f"(it offers {' '.join(offered) or 'none'}; announcer speaks PLAIN and LOGIN)",
                                   connection=True)
        if code != 235:
            raise smtplib.SMTPAuthenticationError(code, reply)

    def _login_oauth2(self, smtp: smtplib.SMTP, offered: list[str]) -> None:
        """One AUTH XOAUTH2 (or OAUTHBEARER, where only that is offered) with a token fetched now.

        A rejected token is answered 535 (Microsoft), or 334 with a base64 JSON reason that the
        client acknowledges before the 535 (Google; RFC 7628 3.2.3): both stop the pass, with the reason.
        """
        from announcer.deliver.oauth2 import challenge_reason, oauthbearer, xoauth2

        settings = self.settings
        mechanism = next((name for name in ("XOAUTH2", "OAUTHBEARER") if name in offered), None)
        if mechanism is None:
            raise PermanentFailure(f"{self._place}: the server offers no OAuth2 login (it offers "
                                   f"{' '.join(offered) or 'none'}; announcer speaks XOAUTH2 and OAUTHBEARER)",
                                   connection=True)
        token = self._tokens.token()
        if mechanism == "XOAUTH2":
            initial = xoauth2(settings.username, token)
        else:
            initial = oauthbearer(settings.username, settings.host, settings.port, token)
        code, reply = smtp.docmd("AUTH", f"{mechanism} {initial}")
        reason = ""
        if code == 334:
            reason = challenge_reason(reply.decode("ascii", "replace"))
            code, reply = smtp.docmd("AQ==" if mechanism == "OAUTHBEARER" else "")
        if code != 235:
            answer = _reply(code, reply) + (f" ({reason})" if reason else "")
            failure = PermanentFailure if code >= 500 or code == 334 else TemporaryFailure
            raise failure(f"{self._place}: token rejected for {settings.username!r} ({mechanism}): {answer}",
                          connection=True)

    def _tls_context(self) -> ssl.SSLContext:
        ca_file = self.settings.ca_file
        try:
            return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise PermanentFailure(f"{self._place}: cannot load ca_file {ca_file}: {_reason(error)}",
                                   connection=True) from error

    def _setup_failure(self, step: str, error: Exception) -> DeliveryError:
        """Classify a failure while connecting, starting TLS or logging in (permanent ones stop the pass)."""
        place, user = self._place, self.settings.username
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return PermanentFailure(f"{place}: the server does not offer {step}", connection=True)
        if isinstance(error, smtplib.SMTPResponseException):
            what = f"authentication failed for {user!r}" if step == "AUTH" else f"refused at {step}"
            return _reply_failure(place, what, error.smtp_code, error.smtp_error, connection=True)
        if isinstance(error, smtplib.SMTPServerDisconnected):
            return TemporaryFailure(f"{place}: connection lost at {step} ({error})", connection=True)
        if isinstance(error, smtplib.SMTPException):
            return PermanentFailure(f"{place}: {step} failed: {error}", connection=True)
        if isinstance(error, ssl.SSLCertVerificationError):
            return PermanentFailure(f"{place}: certificate verification failed: {error.verify_message}",
                                    connection=True)
        if isinstance(error, ssl.SSLError) and not isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return PermanentFailure(f"{place}: TLS failed at {step}: {_reason(error)}", connection=True)
        if isinstance(error, TimeoutError):
            return TemporaryFailure(f"{place}: timed out at {step} after {self.settings.timeout:g}s", connection=True)
        if isinstance(error, ConnectionRefusedError):
            return TemporaryFailure(f"{place}: connection refused", connection=True)
        if isinstance(error, socket.gaierror):
            return TemporaryFailure(f"{place}: cannot look up the host: {_reason(error)}", connection=True)
        return TemporaryFailure(f"{place}: {step} failed: {_reason(error)}", connection=True)

    def _transact(self, smtp: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> None:
        """MAIL, RCPT and DATA step by step, so a lost connection is known to be before or after the data."""
        place = self._place
        options = [f"SIZE={len(data)}"] if smtp.has_extn("size") else []
        try:
            code, reply = smtp.mail(sender, options)
            if code == 421:
                raise _Lost(_reply(code, reply))
            if code != 250:
                raise self._abandon(smtp, _reply_failure(place, f"sender <{sender}> refused", code, reply))
            refused = []
            for recipient in recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    refused.append((recipient, code, reply))
            if refused:
                details = "; ".join(f"<{rcpt}> {_reply(code, reply)}" for rcpt, code, reply in refused)
                failure = PermanentFailure if any(code >= 500 for _, code, _ in refused) else TemporaryFailure
                raise self._abandon(smtp, failure(f"{place}: recipient refused: {details}"))
            code, reply = smtp.docmd("DATA")
            if code != 354:
                raise self._abandon(smtp, _reply_failure(place, "DATA refused", code, reply))
            # Without the final "." the server cannot accept the message: a failure here is still temporary.
            smtp.send(_dot_stuffed(data))
        except smtplib.SMTPServerDisconnected as error:
            raise _Lost(str(error)) from None
        # The point of no return: from here a lost connection or a time-out leaves the outcome unknown.
        try:
            code, reply = smtp.getreply()
        except smtplib.SMTPServerDisconnected as error:
            raise UncertainDelivery(f"{place}: no reply after the message was sent ({error}); "
                                    "the server may have accepted it") from None
        if code == 421:
            smtp.close()
        if not 200 <= code < 300:
            if code < 400:
                raise UncertainDelivery(f"{place}: unexpected reply after the message was sent: {_reply(code, reply)}")
            raise _reply_failure(place, "message refused", code, reply)

    def _abandon(self, smtp: smtplib.SMTP, failure: DeliveryError) -> DeliveryError:
        """Reset the transaction (or drop a connection the server is closing) and pass on the failure."""
        try:
            code, _ = smtp.rset()
            if code == 421:
                smtp.close()
        except (smtplib.SMTPException, OSError):
            smtp.close()
        return failure

    def _discard(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None


class MaildirTransport:
    """Writes each message into a local Maildir (created if missing) that any mail client can open."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._box: mailbox.Maildir | None = None

    def __enter__(self) -> MaildirTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._box = None

    def describe(self) -> str:
        """The Maildir folder."""
        return f"Maildir {self.path}"

    def send(self, message: EmailMessage) -> None:
        """Add the message to the Maildir; PermanentFailure naming the folder if it cannot be written."""
        try:
            if self._box is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._box = mailbox.Maildir(self.path, create=True)
            self._box.add(wire_bytes(message))
        except OSError as error:
            self._box = None
            raise PermanentFailure(f"{self.path}: cannot write the message: {_reason(error)}") from error


class DryRunTransport:
    """Sends nothing, only counts (dry runs and previews: the pass hands each message back)."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> DryRunTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def describe(self) -> str:
        """Says that nothing is sent."""
        return "dry run (nothing is sent)"

    def send(self, message: EmailMessage) -> None:
        """Count the message; keep nothing (a preview of thousands would hold them all)."""
        self.count += 1


def open_transport(config: Config, password: str | None) -> Transport:
    """The transport the configuration asks for; it connects on the first send."""
    if config.transport == "maildir":
        return MaildirTransport(config.maildir)
    if config.smtp is None:
        raise PermanentFailure(f'{config.path}: transport "smtp" needs an [smtp] table')
    tokens = None
    if config.smtp.auth == "oauth2":
        from announcer.deliver.oauth2 import token_source

        tokens = token_source(config)
    return SmtpTransport(config.smtp, password, tokens)


def _envelope(message: EmailMessage, place: str) -> tuple[str, list[str]]:
    """The envelope sender (the From address) and recipients (the To addresses)."""
    senders = [addr for _, addr in getaddresses([str(h) for h in message.get_all("From", [])]) if addr]
    recipients = [addr for _, addr in getaddresses([str(h) for h in message.get_all("To", [])]) if addr]
    if not senders or not recipients:
        raise PermanentFailure(f"{place}: the message has no From or no To address")
    return senders[0], recipients


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: leading dots doubled (RFC 5321 4.5.2), ending in CRLF "." CRLF."""
    body = _LINE_START_DOT.sub(b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return f"{code} {' '.join(text.split())}"


def _reply_failure(place: str, what: str, code: int, text: bytes | str, connection: bool = False) -> DeliveryError:
    """A 5xx reply needs a person; anything else (4xx, garbled) may pass."""
    if code >= 500:
        return PermanentFailure(f"{place}: {what}: {_reply(code, text)}", connection=connection)
    return TemporaryFailure(f"{place}: {what}: {_reply(code, text)}", connection=connection)


def _reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason)
    return error.strerror or str(error) or type(error).__name__
