"""The email package, tuned for speed (SPEC 7): building and writing a message takes half the time.

Everything here leans on how the email package works inside (a header registry that remembers,
a policy that keeps plain values as text, a generator that writes a body in one piece, fixed
boundaries, binascii's quoted-printable): the same bytes as `policy.SMTP` and `set_content` give,
sooner. tests/test_mime.py compares them, and runs on every Python the README names.
Nothing outside this module reaches past the email package's public API.
"""

from __future__ import annotations

import base64
import binascii
import re
from email import policy, quoprimime
from email.generator import BytesGenerator
from email.headerregistry import BaseHeader, HeaderRegistry, MessageIDHeader, UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from functools import lru_cache
from io import BytesIO
from typing import Any

# Boundaries: the same in every message, which makes its bytes reproducible. "=_" never occurs
# in a quoted-printable or base64 body, and the two differ, so neither can end a part early.
MIXED_BOUNDARY = "=_announcer_mixed"
ALTERNATIVE_BOUNDARY = "=_announcer_alternative"
QP_LINE = 76  # RFC 2045's longest line of a quoted-printable body
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


# The parts' headers are the same in every message (but for PUBLISH or CANCEL), so they are set
# as whole values, which _Registry parses once, rather than by set_content, which re-parses
# Content-Type for each parameter it adds. Bodies are encoded as set_content encodes them.

def part(content_type: str, payload: str | list[MIMEPart], encoding: str | None = None,
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


class _Generator(BytesGenerator):
    """BytesGenerator writing each body in one piece, not line by line: the same bytes, sooner."""

    def _write_lines(self, lines: str) -> None:
        if "\r" in lines:
            self.write(_NEWLINE.sub(self._NL, lines))  # what the original writes, piece by piece
        elif lines:
            self.write(lines.replace("\n", self._NL))  # the same, when every line ends in \n alone


def flatten(msg: EmailMessage, with_policy: policy.Policy) -> bytes:
    """msg.as_bytes(policy=with_policy), by _Generator."""
    out = BytesIO()
    _Generator(out, mangle_from_=False, policy=with_policy).flatten(msg)
    return out.getvalue()


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message as policy.SMTP writes it (CRLF), for the transports.

    A message from build_message is written with its own policy: the same bytes, three times
    faster, since its headers were parsed by a factory that remembers them.
    """
    return flatten(msg, msg.policy if msg.policy is POLICY else policy.SMTP)


def qp_bound(text: str) -> int:
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
