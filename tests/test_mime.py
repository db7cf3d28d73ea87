"""The tuned email package writes what the plain one writes: headers, bodies, line ends, sizes."""

from __future__ import annotations

import quopri
import random
from email import policy
from email.message import EmailMessage, MIMEPart

import pytest

from announcer.compose.mime import POLICY, base64_lines, flatten, part, qp_bound, quoted_printable


@pytest.mark.parametrize("name, value", [
    ("Subject", "Sun 21 Feb, 2:00 pm: Jeffrey Pennington (Google) - Deep Networks"),
    ("Subject", "  spaced   out  "), ("Subject", 'Re: [list] x; y, z (a) <b> "q" 100% ~ {x} | `y` ^z'),
    ("Subject", "x" * 69), ("Subject", "x" * 70), ("Subject", "a =?utf-8?q?b?= c"), ("Subject", "back\\slash"),
    ("Subject", "Zdeborová"), ("Subject", "tab\there"), ("Auto-Submitted", "auto-generated"), ("Approved", "s3cret"),
    ("Message-ID", "<2027-02-21-pennington.announcement.084c93e068@mad.example.edu>"),
    ("In-Reply-To", "<a.b@c.d>"), ("References", "<a@b> <c@d>"), ("References", "<a b@c>"), ("Message-ID", "<a@b"),
    ("From", '"Smith, J." <j@example.org>'), ("Date", "Sun,  14 Feb 2027 14:00:05 +0000"),
    ("Content-Type", "text/plain;charset=utf-8"),
])
def test_a_header_kept_as_text_is_written_as_its_parsed_object_would_be(name, value):
    kept = EmailMessage(policy=POLICY)
    kept[name] = value
    parsed = EmailMessage(policy=POLICY)
    parsed[name] = POLICY.header_factory(name, value)
    assert kept.as_bytes() == parsed.as_bytes()
    assert str(kept[name]) == str(parsed[name])


@pytest.mark.parametrize("body", ["one\ntwo\n", "crlf\r\nline\r\n", "lone\rcr\n", "mixed\r\nand\nboth\r", ""])
def test_the_quick_generator_ends_lines_as_the_email_package_does(body):
    part = MIMEPart(policy=POLICY)
    part["Content-Type"] = "text/plain"
    part.set_payload(body)
    assert flatten(part, policy.SMTP) == part.as_bytes(policy=policy.SMTP)


AWKWARD_TEXTS = [
    "plain\n", "Zdeborová – “quoted” ünïcödé\n", "crlf\r\nline ends\r\n", "no newline at the end",
    "trailing space \nand tab\t\n", "a=b =3D ==\n", "From the start\n.\n", "x" * 200 + "\n",
    "é" * 100 + "\n", "\n\nblank lines\n\n\n", "",
]


@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_parts_hold_what_set_content_would_write(text):
    for subtype in ("plain", "calendar"):
        quick = part(f'text/{subtype}; charset="utf-8"', quoted_printable(text), "quoted-printable")
        expected = MIMEPart(policy=POLICY)
        expected.set_content(text, subtype=subtype, cte="quoted-printable")
        assert quick.get_content() == expected.get_content()  # soft line breaks may fall elsewhere
        assert quick.get_payload().isascii()
        assert max(len(line) for line in quick.get_payload().split("\n")) <= 76
    data = text.encode("utf-8")
    quick = part('text/calendar; charset="utf-8"', base64_lines(data), "base64", 'attachment; filename="i.ics"')
    expected = MIMEPart(policy=POLICY)
    expected.set_content(data, maintype="text", subtype="calendar", filename="i.ics")
    assert quick.get_payload() == expected.get_payload()
    assert quick.get_payload(decode=True) == data
    assert quick.get_filename() == "i.ics"


def test_quoted_printable_decodes_to_the_text_in_lines_of_at_most_76():
    rng = random.Random(76)
    pieces = ["word", " ", "\t", "=", "\n", "\r\n", "é", "€", ".", "x" * 90, "= ", " \n", "\t\n", "\n.\n", "=\n"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 200)))
        encoded = quoted_printable(text)
        expected = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
        assert quopri.decodestring(encoded.encode("ascii")) == expected, repr(text)
        assert max(len(line) for line in encoded.split("\n")) <= 76, repr(text)
        assert not any(line.endswith((" ", "\t")) for line in encoded.split("\n")), repr(text)


def test_the_quoted_printable_bound_is_above_the_encoding_and_close_to_it_for_prose():
    rng = random.Random(5)
    pieces = ["word", " ", "\t", "=", "\n", "\r", "\r\n", "é", "€", "\u2028", ".", "x" * 90, "= ", " \n"]
    texts = AWKWARD_TEXTS + ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 300))) for _ in range(2000)]
    for text in texts:
        real = len(quoted_printable(text).replace("\n", "\r\n"))
        assert real <= qp_bound(text), repr(text)
    prose = "A sentence of an abstract, as people write them.\n" * 40
    assert qp_bound(prose) < 1.2 * len(quoted_printable(prose).replace("\n", "\r\n"))
