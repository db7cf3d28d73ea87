"""One EmailMessage per planned message: headers, threading, parts; Mailman checks; previews."""

from __future__ import annotations

import base64
import binascii
import copy
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy, quoprimime
from email.generator import BytesGenerator
from email.headerregistry import BaseHeader, HeaderRegistry, MessageIDHeader, UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime
from functools import lru_cache
from io import BytesIO
from typing import TYPE_CHECKING, Any

from announcer.compose.invite import build_invite, invite_texts
from announcer.compose.mailman import command_warnings, size_warnings
from announcer.plan import PlannedMessage
from announcer.sources.config import MASK, Config
from announcer.sources.talks import Talk

if TYPE_CHECKING:
    from announcer.compose.render import Rendered, Renderer

INVITE_NAME = "invite.ics"
# Boundaries: the same in every message, which makes its bytes reproducible. "=_" never occurs
# in a quoted-printable or base64 body, and the two differ, so neither can end a part early.
MIXED_BOUNDARY = "=_announcer_mixed"
ALTERNATIVE_BOUNDARY = "=_announcer_alternative"
QP_LINE = 76  # RFC 2045's longest line of a quoted-printable body
FIXED_BYTES = 4096  # size_bound: names, part headers and boundaries, with room to spare
_NEWLINE = re.compile(r"\r\n|\r|\n")  # email.generator's NLCRE
_QP_LITERAL = bytes(range(33, 127)).replace(b"=", b"") + b" \t\r\n"  # bytes QP may leave as they are


class _MessageIDHeader(MessageIDHeader):
    """A msg-id header written on one line, never folded (RFC 5322 allows 998 characters)."""

    def fold(self, *, policy: policy.Policy) -> str:
        if not str(self).isascii():
            return super().fold(policy=policy)
        return f"{self.name}: {self}{policy.linesep}"


class _FoldsOnce(BaseHeader):
    """A header that remembers how it folds: the same objects recur in every message (_Registry)."""

    def fold(self, *, policy: policy.Policy) -> str:
        folds = self.__dict__.setdefault("_folds", {})
        key = (policy.linesep, policy.max_line_length, policy.utf8)  # all that folding reads
        if key not in folds:
            folds[key] = super().fold(policy=policy)
        return folds[key]


class _Registry(HeaderRegistry):
    """The email package's header factory, remembering what it already made.

    HeaderRegistry creates a new header class for every header it parses, and every part
    re-parses the same Content-Type values; reusing both (header objects are immutable)
    halves the time to build a message, and remembering their folded form speeds writing it.
    See benchmarks/ and SPEC section 7.
    """

    def __init__(self) -> None:
        super().__init__(base_class=_FoldsOnce)
        self._classes: dict[str, type] = {}
        self._parse = lru_cache(maxsize=256)(super().__call__)

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        if key not in self._classes:
            self._classes[key] = super().__getitem__(name)
        return self._classes[key]

    def __call__(self, name: str, value: Any) -> Any:
        return self._parse(name, value) if isinstance(value, str) else super().__call__(name, value)


# One msg-id in dot-atom form (RFC 5322 3.6.4), as plan.message_id_for makes them.
_PLAIN_MSG_ID = re.compile(r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                           r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>")


class _Policy(policy.EmailPolicy):
    """policy.SMTP, keeping short plain header values as the text they were set to.

    Parsing headers into objects costs more than the rest of building a message. Unstructured
    text in printable ASCII (no encoded word, no backslash), or one plain msg-id, that fits on its
    line is written out exactly as set, parsed or not; so it is kept as text and parsed only when
    read (`msg["Subject"]` is still a header object). Every other value is parsed as usual (MIME
    parameters are rewritten by it, and are read back while writing the message anyway).
    tests/test_message.py checks that both ways write the same.
    """

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if isinstance(value, str) and len(name) + 2 + len(value) <= self.max_line_length:
            kind = self.header_factory[name]
            if issubclass(kind, MessageIDHeader) and _PLAIN_MSG_ID.fullmatch(value):
                return (name, value)
            if (issubclass(kind, UnstructuredHeader) and value.isascii() and value.isprintable()
                    and "=?" not in value and "\\" not in value):
                return (name, value)
        return super().header_store_parse(name, value)


def _policy() -> policy.EmailPolicy:
    # The email package treats In-Reply-To and References as unstructured text: a msg-id longer
    # than a line would be RFC 2047-encoded, which breaks threading; and a folded Message-ID
    # parses back with a leading space. So msg-id headers stay whole on their line.
    registry = _Registry()
    for name in ("message-id", "in-reply-to", "references"):
        registry.map_to_type(name, _MessageIDHeader)
    return _Policy(linesep="\r\n", header_factory=registry)  # policy.SMTP's settings


POLICY = _policy()


def calendar_method(kind: str) -> str:
    """The iTIP METHOD a message of this kind carries."""
    return "CANCEL" if kind == "cancellation" else "PUBLISH"


@dataclass(frozen=True)
class EncodedInvite:
    """A talk's invite in its two encodings in a message (made once for all its messages)."""

    quoted_printable: str   # the calendar part of the alternative
    base64: str             # the invite.ics attachment


_INVITES: dict[tuple, EncodedInvite] = {}  # the invites of the pass in hand (one `now`)
INVITES_KEPT = 4096  # some MB: a pass may send every announcement before the first reminder


def _invite(config: Config, talk: Talk, method: str, sequence: int, now: datetime) -> EncodedInvite:
    """build_invite, made once a pass for each talk (its announcement and reminder carry the same)."""
    if _INVITES and next(iter(_INVITES))[-1] != now:
        _INVITES.clear()  # a pass at another time: it stamps another DTSTAMP
    # Everything build_invite reads: the talk and the series (frozen values), the sender, the rest.
    key = (config.series, str(config.mail.sender), talk, method, sequence, now)
    invite = _INVITES.get(key)
    if invite is None:
        if len(_INVITES) >= INVITES_KEPT:
            del _INVITES[next(iter(_INVITES))]  # the oldest
        data = build_invite(config, talk, method=method, sequence=sequence, now=now)
        invite = _INVITES[key] = EncodedInvite(quoted_printable(data.decode("utf-8")), base64_lines(data))
    return invite


def build_message(config: Config, talk: Talk, planned: PlannedMessage, *, now: datetime,
                  renderer: Renderer, approved: str | None) -> EmailMessage:
    """The message exactly as it is sent: headers, text, HTML and the invite twice (SPEC 4.1)."""
    rendered = renderer.render(talk, planned.kind, changes=planned.changes, sequence=planned.sequence)
    method = calendar_method(planned.kind)
    invite = _invite(config, talk, method, planned.sequence, now)

    msg = EmailMessage(policy=POLICY)
    # Set as text, which is what the header objects would be made from (see _Policy).
    msg["From"] = str(config.mail.sender)
    msg["To"] = ", ".join(str(address) for address in config.mail.to)
    if config.mail.reply_to is not None:
        msg["Reply-To"] = str(config.mail.reply_to)
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(now.astimezone(timezone.utc).replace(microsecond=0))
    msg["Message-ID"] = planned.message_id
    if planned.thread_id:
        msg["In-Reply-To"] = planned.thread_id
        msg["References"] = planned.thread_id
    msg["Auto-Submitted"] = "auto-generated"
    if approved:
        msg["Approved"] = approved

    # Quoted-printable keeps every part 7-bit clean (smtplib does not ask for 8BITMIME).
    calendar_type = f'text/calendar; charset="utf-8"; method="{method}"'
    alternative = _part(f'multipart/alternative; boundary="{ALTERNATIVE_BOUNDARY}"', [
        _part('text/plain; charset="utf-8"', quoted_printable(rendered.text), "quoted-printable"),
        _part('text/html; charset="utf-8"', quoted_printable(rendered.html), "quoted-printable"),
        _part(calendar_type, invite.quoted_printable, "quoted-printable"),
    ])
    # The copy outside the alternative survives Mailman's collapse_alternatives (SPEC 4.3).
    attachment = _part(calendar_type, invite.base64, "base64", f'attachment; filename="{INVITE_NAME}"')
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = f'multipart/mixed; boundary="{MIXED_BOUNDARY}"'
    msg.set_payload([alternative, attachment])
    return msg


# The parts' headers are the same in every message (but for PUBLISH or CANCEL), so they are set
# as whole values, which _Registry parses once, rather than by set_content, which re-parses
# Content-Type for each parameter it adds. Bodies are encoded as set_content encodes them.

def _part(content_type: str, payload: str | list[MIMEPart], encoding: str | None = None,
          disposition: str | None = None) -> MIMEPart:
    """A part with these headers and its payload: an encoded body, or the parts of a multipart."""
    part = MIMEPart(policy=POLICY)
    part["Content-Type"] = content_type
    if encoding:
        part["Content-Transfer-Encoding"] = encoding
    if disposition:
        part["Content-Disposition"] = disposition
    part.set_payload(payload)
    return part


def quoted_printable(text: str) -> str:
    """Text as a quoted-printable body: UTF-8, lines of at most 76 characters, \n line ends.

    binascii's encoder (in C; email.encoders uses it) is three times faster than the email
    package's quoprimime, which set_content uses: the same content, its soft line breaks a
    character earlier. But binascii lets a line whose 76th character is a space or tab grow to
    77 when it escapes it; such a text is encoded by quoprimime instead.
    """
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"  # the generator writes CRLF
    encoded = binascii.b2a_qp(body, istext=True).decode("ascii")
    if max(map(len, encoded.split("\n"))) > QP_LINE:
        return quoprimime.body_encode(body.decode("latin-1"), QP_LINE)
    return encoded


def base64_lines(data: bytes) -> str:
    """Bytes as set_content(data, ...) encodes them: base64 in lines of 76."""
    return base64.encodebytes(data).decode("ascii")


def _masked(msg: EmailMessage) -> EmailMessage:
    if msg.get("Approved", MASK) == MASK:  # none, or masked already (previews are built masked)
        return msg
    masked = copy.deepcopy(msg)
    masked.replace_header("Approved", MASK)
    return masked


class _Generator(BytesGenerator):
    """BytesGenerator writing each body in one piece, not line by line: the same bytes, sooner."""

    def _write_lines(self, lines: str) -> None:
        if "\r" in lines:
            self.write(_NEWLINE.sub(self._NL, lines))  # what the original writes, piece by piece
        elif lines:
            self.write(lines.replace("\n", self._NL))  # the same, when every line ends in \n alone


def _flat(msg: EmailMessage, with_policy: policy.Policy) -> bytes:
    """msg.as_bytes(policy=with_policy), by _Generator."""
    out = BytesIO()
    _Generator(out, mangle_from_=False, policy=with_policy).flatten(msg)
    return out.getvalue()


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message as policy.SMTP writes it (CRLF), for the transports.

    A message from build_message is written with its own policy: the same bytes, three times
    faster, since its headers were parsed by a factory that remembers them.
    """
    return _flat(msg, msg.policy if msg.policy is POLICY else policy.SMTP)


def to_bytes(msg: EmailMessage, mask_approved: bool) -> bytes:
    """The message as it goes on the wire (CRLF), for .eml files; optionally Approved masked."""
    masked = _masked(msg) if mask_approved else msg
    return _flat(masked, masked.policy)


def text_part(msg: EmailMessage) -> str:
    """The decoded text/plain body of a message."""
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content().replace("\r\n", "\n") if part is not None else ""


def preview_text(msg: EmailMessage) -> str:
    """The headers, then the text version, as a person reads them; Approved shown as ********."""
    lines = []
    for name, value in msg.items():
        if name.lower() == "mime-version" or name.lower().startswith("content-"):
            continue
        lines.append(f"{name}: {MASK if name.lower() == 'approved' else value}")
    return "\n".join(lines) + "\n\n" + text_part(msg)


def mailman_warnings(msg: EmailMessage, max_size: int, size: int | None = None) -> list[str]:
    """What would make Mailman hold this post: its size (given, or measured), or a command word at the top."""
    size = len(to_bytes(msg, mask_approved=False)) if size is None else size
    return size_warnings(size, max_size) + command_warnings(str(msg.get("Subject", "")), text_part(msg))


def size_bound(config: Config, talk: Talk, planned: PlannedMessage, rendered: Rendered,
               approved: str | None) -> int:
    """More bytes than build_message's message can have, found without building it.

    `check` builds and measures a message only when this bound is over the list's limit.
    - Text and HTML: a bound on their quoted-printable form (_qp_bound).
    - The invite, in the message twice: every value from the talk or the series (invite_texts)
      is counted six times. Escaping can double an ASCII character and folding adds 3 bytes in 75;
      quoted-printable leaves those escapes as they are but writes a UTF-8 byte or "=" in 3, and
      base64 writes 3 bytes in 4 (with a line break in 76). So a byte of a value costs at most
      2.1 x (1.05 + 1.4) = 5.1 bytes, or 1.05 x (3.1 + 1.4) = 4.7 if it is not escaped.
    - Headers: every value four times (RFC 2047 words and folding take less).
    - FIXED_BYTES for property and header names, part headers and boundaries (about 2 KB).
    tests/test_message.py checks the bound on the example talks and on hostile ones.
    """
    mail = config.mail
    invite_values = invite_texts(config, talk, calendar_method(planned.kind)).values()
    header_values = [rendered.subject, str(mail.sender), *map(str, mail.to), str(mail.reply_to or ""),
                     planned.message_id, planned.thread_id or "", planned.thread_id or "", approved or ""]
    return (_qp_bound(rendered.text) + _qp_bound(rendered.html)
            + 6 * sum(len(value.encode("utf-8")) for value in invite_values)
            + 4 * sum(len(value.encode("utf-8")) for value in header_values) + FIXED_BYTES)


def _qp_bound(text: str) -> int:
    """More bytes than `text` takes as a quoted-printable body with CRLF line ends.

    Each byte outside printable ASCII, and each "=", is written in 3; so may be the last space
    or tab of a line, which may also take a soft line break of its own. A soft line break ("="
    CRLF, 3 bytes) ends each 75 or more characters of a line (counted as one in 72), and every
    line ends in CRLF. Counting is C-fast (bytes.translate), where encoding is not.
    """
    data = text.encode("utf-8")
    lines = data.count(b"\n") + data.count(b"\r") + 1
    escaped = len(data.translate(None, _QP_LITERAL))
    encoded = len(data) + 2 * (escaped + lines)
    return encoded + 3 * (encoded // 72 + lines) + 2 * lines
