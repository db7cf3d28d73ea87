"""One EmailMessage per planned message, laid out as SPEC 4.1 says; its bytes, its preview, its warnings."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

from announcer.compose.invite import build_invite, invite_texts
from announcer.compose.mailman import command_warnings, size_warnings
from announcer.compose.mime import (
    ALTERNATIVE_BOUNDARY,
    MIXED_BOUNDARY,
    POLICY,
    base64_lines,
    flatten,
    part,
    qp_bound,
    quoted_printable,
)
from announcer.plan import PlannedMessage
from announcer.sources.config import MASK, Config
from announcer.sources.talk import Talk

if TYPE_CHECKING:
    from announcer.compose.render import Rendered, Renderer

INVITE_NAME = "invite.ics"
FIXED_BYTES = 4096  # size_bound: names, part headers and boundaries, with room to spare
EVENT_BYTES = 1024  # size_bound: the property names of a course post's every event, twice encoded


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


def _invite(config: Config, talk: Talk, method: str, sequence: int, now: datetime,
            sequences: tuple[int, ...] = ()) -> EncodedInvite:
    """build_invite, made once a pass for each talk (its announcement and reminder carry the same)."""
    if _INVITES and next(iter(_INVITES))[-1] != now:
        _INVITES.clear()  # a pass at another time: it stamps another DTSTAMP
    # Everything build_invite reads: the talk and the series (frozen values), the sender, the rest.
    key = (config.series, str(config.mail.sender), talk, method, sequence, sequences, now)
    invite = _INVITES.get(key)
    if invite is None:
        if len(_INVITES) >= INVITES_KEPT:
            del _INVITES[next(iter(_INVITES))]  # the oldest
        data = build_invite(config, talk, method=method, sequence=sequence, now=now, sequences=sequences)
        invite = _INVITES[key] = EncodedInvite(quoted_printable(data.decode("utf-8")), base64_lines(data))
    return invite


def build_message(config: Config, talk: Talk, planned: PlannedMessage, *, now: datetime,
                  renderer: Renderer, approved: str | None) -> EmailMessage:
    """The message exactly as it is sent: headers, text, HTML and the invite twice (SPEC 4.1)."""
    rendered = renderer.render(talk, planned.kind, changes=planned.changes, sequence=planned.sequence)
    method = calendar_method(planned.kind)
    invite = _invite(config, talk, method, planned.sequence, now, planned.sequences)

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
    alternative = part(f'multipart/alternative; boundary="{ALTERNATIVE_BOUNDARY}"', [
        part('text/plain; charset="utf-8"', quoted_printable(rendered.text), "quoted-printable"),
        part('text/html; charset="utf-8"', quoted_printable(rendered.html), "quoted-printable"),
        part(calendar_type, invite.quoted_printable, "quoted-printable"),
    ])
    # The copy outside the alternative survives Mailman's collapse_alternatives (SPEC 4.3).
    attachment = part(calendar_type, invite.base64, "base64", f'attachment; filename="{INVITE_NAME}"')
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = f'multipart/mixed; boundary="{MIXED_BOUNDARY}"'
    msg.set_payload([alternative, attachment])
    return msg


def _masked(msg: EmailMessage) -> EmailMessage:
    if msg.get("Approved", MASK) == MASK:  # none, or masked already (previews are built masked)
        return msg
    masked = copy.deepcopy(msg)
    masked.replace_header("Approved", MASK)
    return masked


def to_bytes(msg: EmailMessage, mask_approved: bool) -> bytes:
    """The message as it goes on the wire (CRLF), for .eml files; optionally Approved masked."""
    masked = _masked(msg) if mask_approved else msg
    return flatten(masked, masked.policy)


def textpart(msg: EmailMessage) -> str:
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
    return "\n".join(lines) + "\n\n" + textpart(msg)


def mailman_warnings(msg: EmailMessage, max_size: int, size: int | None = None) -> list[str]:
    """What would make Mailman hold this post: its size (given, or measured), or a command word at the top."""
    size = len(to_bytes(msg, mask_approved=False)) if size is None else size
    return size_warnings(size, max_size) + command_warnings(str(msg.get("Subject", "")), textpart(msg))


def size_bound(config: Config, talk: Talk, planned: PlannedMessage, rendered: Rendered,
               approved: str | None) -> int:
    """More bytes than build_message's message can have, found without building it.

    `check` builds and measures a message only when this bound is over the list's limit.
    - Text and HTML: a bound on their quoted-printable form (mime.qp_bound).
    - The invite, in the message twice: every value from the talk or the series (invite_texts)
      is counted six times. Escaping can double an ASCII character and folding adds 3 bytes in 75;
      quoted-printable leaves those escapes as they are but writes a UTF-8 byte or "=" in 3, and
      base64 writes 3 bytes in 4 (with a line break in 76). So a byte of a value costs at most
      2.1 x (1.05 + 1.4) = 5.1 bytes, or 1.05 x (3.1 + 1.4) = 4.7 if it is not escaped.
    - Headers: every value four times (RFC 2047 words and folding take less).
    - FIXED_BYTES for property and header names, part headers and boundaries (about 2 KB), and
      EVENT_BYTES for each more event of a course post (its property names: about 250 bytes, twice).
    tests/test_message.py checks the bound on the example talks and on hostile ones.
    """
    mail = config.mail
    invite_values = [value for event in talk.sessions or (talk,)
                     for value in invite_texts(config, event, calendar_method(planned.kind)).values()]
    header_values = [rendered.subject, str(mail.sender), *map(str, mail.to), str(mail.reply_to or ""),
                     planned.message_id, planned.thread_id or "", planned.thread_id or "", approved or ""]
    return (qp_bound(rendered.text) + qp_bound(rendered.html)
            + 6 * sum(len(value.encode("utf-8")) for value in invite_values)
            + 4 * sum(len(value.encode("utf-8")) for value in header_values)
            + FIXED_BYTES + EVENT_BYTES * len(talk.sessions))


