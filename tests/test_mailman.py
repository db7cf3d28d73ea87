"""announcer against a real GNU Mailman 3.3.10 (SPEC 4.3): what a list does to its posts.

Each test makes a list of two members through Mailman's REST API, posts to it with announcer's
own `send --due` (a subprocess, SMTP to the relay in front of Mailman, see mailman_server.py)
and reads what Mailman delivered to the members (the SMTP sink), held, or archived.

Mailman's virtual environment is made by `.venv/bin/python tests/mailman_env.py` (`.ci/run` does it).
Without it these tests are skipped, with that command as the reason; with CI=true a missing
environment is a failure instead, so CI never passes without Mailman.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from icalendar import Calendar

from conftest import write_config
from mailman_env import SETUP_COMMAND, ready_venv
from mailman_server import MailmanCore, Relay, wait_for
from smtp_server import MailServer, Received

DOMAIN = "lists.example.org"
ORGANISER = "organiser@example.org"   # a member: the sender of member posts
MEMBERS = [ORGANISER, "anne@example.org"]
OUTSIDER = "seminar-bot@example.org"  # not a member
MODERATOR_PASSWORD = "Moderat0r-Pass-Test"
APPROVED_ENV = "ANNOUNCER_TEST_APPROVED_PASSWORD"
DELIVERY_TIMEOUT = 60.0
ANNOUNCE_AT = "2027-02-14T09:00-05:00"   # the announcement of TALK is due
TALK = """\
title: Dynamical Isometry and a Mean Field Theory of Signal Propagation in Deep Neural Networks
speaker:
  name: Jeffrey Pennington
  affiliation: Google
start: 2027-02-21 14:00
location: {location}
status: {status}
abstract: |
  In recent years, many state-of-the-art models in deep learning have utilized
  increasingly deep architectures, some with *hundreds* of layers.
{more}"""
LONG_ABSTRACT = "".join(f"  Paragraph {n}: " + "a long abstract that goes on and on. " * 12 + "\n\n" for n in range(30))


@pytest.fixture(scope="module")
def mailman_venv() -> Path:
    """Mailman's own virtual environment: skipped without it, or failed under CI=true."""
    venv = ready_venv()
    if venv is None:
        reason = f"Mailman 3.3.10 is not installed for the tests: run `{SETUP_COMMAND}` (a minute; needs PyPI)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return venv


@pytest.fixture(scope="module")
def sink() -> Iterator[MailServer]:
    """The SMTP server that receives Mailman's copies for the members."""
    server = MailServer("none").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mailman(mailman_venv: Path, sink: MailServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailmanCore]:
    """Mailman core, running for this module's tests; stopped, all its processes, at the end."""
    core = MailmanCore(mailman_venv, tmp_path_factory.mktemp("mailman-var"), sink.port)
    try:
        core.start()
        yield core
    finally:
        core.stop()


@pytest.fixture(scope="module")
def relay(mailman: MailmanCore) -> Iterator[Relay]:
    """The SMTP-to-LMTP relay announcer posts to."""
    server = Relay(mailman.lmtp_port).start()
    try:
        yield server
    finally:
        server.stop()


class Series:
    """A series folder whose announcer posts to a Mailman list through the relay."""

    def __init__(self, folder: Path, relay: Relay, list_address: str, sender: str = ORGANISER,
                 approved: bool = False, subject_template: str | None = None, domain: str | None = None) -> None:
        self.folder = folder
        folder.mkdir(exist_ok=True)
        mail = {"from": f"MaD Seminar <{sender}>", "to": [list_address]}
        # A domain per list gives each test's posts Message-IDs of their own (Mailman's message
        # store, which keeps held posts, refuses a second post with a Message-ID it has).
        series = {"name": "MaD Seminar", "domain": domain or f"{list_address.split('@')[0]}.example.org"}
        if approved:
            mail["approved_password_env"] = APPROVED_ENV
        if subject_template is not None:
            (folder / "templates").mkdir()
            (folder / "templates" / "announcement.subject.j2").write_text(subject_template, encoding="utf-8")
            series["templates_dir"] = "templates"
        self.config = write_config(
            folder, mail=mail, series=series, delivery={"transport": "smtp", "maildir": None},
            smtp={"host": relay.host, "port": relay.port, "security": "none", "timeout": "30s"},
            messages=[{"kind": "announcement", "before": "7d", "at": "09:00"}])
        self.talk()

    def talk(self, location: str = "Auditorium Hall 150", status: str = "confirmed", more: str = "") -> None:
        """Write the talk file (again, to change the talk); `more` is added to the abstract."""
        text = TALK.format(location=location, status=status, more=more)
        (self.folder / "talks" / "2027-02-21-pennington.yaml").write_text(text, encoding="utf-8")

    def announcer(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real CLI on this series."""
        env = {**os.environ, APPROVED_ENV: MODERATOR_PASSWORD}
        return subprocess.run([sys.executable, "-m", "announcer", "--config", str(self.config), *args],
                              capture_output=True, text=True, timeout=120, env=env)

    def send_due(self, now: str) -> None:
        """`send --due` at `now`: exactly one message goes out and the relay hands it to Mailman."""
        done = self.announcer("send", "--due", "--now", now)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 sent, 0 retry, 0 failed, 0 uncertain" in done.stdout, done.stdout


def make_list(mailman: MailmanCore, name: str, **settings: object) -> tuple[str, str]:
    """A new list `name@DOMAIN` with MEMBERS; returns its address and id."""
    address = f"{name}@{DOMAIN}"
    return address, mailman.create_list(address, MEMBERS, **settings)


def ids(message: Message, name: str) -> list[str]:
    """The message ids in a header (Message-ID, In-Reply-To, References), however it was folded.

    Mailman folds a long Message-ID onto a line of its own, which parses back with whitespace.
    """
    return str(message.get(name, "")).split()


def message_id(message: Message) -> str:
    """The message's Message-ID."""
    [value] = ids(message, "Message-ID")
    return value


def last_post(relay: Relay) -> EmailMessage:
    """The post announcer sent last, as the relay received it."""
    return relay.received[-1].message()


def copies_of(sink: MailServer, post: Message) -> list[Received]:
    """What the sink has received of this post so far."""
    return [r for r in sink.messages if message_id(r.message()) == message_id(post)]


def copies(mailman: MailmanCore, sink: MailServer, post: Message) -> list[EmailMessage]:
    """Wait until Mailman has sent this post to each member (once); return the copies."""
    def delivered() -> list[Received] | None:
        found = copies_of(sink, post)
        return found if {address for r in found for address in r.rcpt_tos} >= set(MEMBERS) else None

    found = wait_for(f"Mailman's copies of {message_id(post)}", delivered, DELIVERY_TIMEOUT, mailman.logs)
    assert sorted(address for r in found for address in r.rcpt_tos) == sorted(MEMBERS)
    return [r.message() for r in found]


def held(mailman: MailmanCore, list_id: str) -> list[dict]:
    """Wait until the list holds a post; return what it holds."""
    return wait_for(f"a post held by {list_id}", lambda: mailman.held(list_id) or None, DELIVERY_TIMEOUT, mailman.logs)


def leaves(part: Message) -> list[tuple[str, str | None, str | None, bytes]]:
    """Every non-multipart part: its type, calendar method, file name and decoded content."""
    return [(p.get_content_type(), p.get_param("method"), p.get_filename(), p.get_payload(decode=True))
            for p in part.walk() if not p.is_multipart()]


def content_types(message: Message) -> list[str]:
    """The MIME tree, depth first."""
    return [p.get_content_type() for p in message.walk()]


def method(ics: bytes) -> str:
    """An invite's METHOD."""
    return str(Calendar.from_ical(ics)["METHOD"])


def test_a_member_post_reaches_both_members_intact_with_footer_and_prefix(
        tmp_path: Path, mailman: MailmanCore, relay: Relay, sink: MailServer) -> None:
    address, list_id = make_list(mailman, "member-post")
    Series(tmp_path, relay, address).send_due(ANNOUNCE_AT)
    post = last_post(relay)

    [copy] = copies(mailman, sink, post)
    assert mailman.held(list_id) == []
    prefix = mailman.rest("GET", f"lists/{list_id}/config")["subject_prefix"]
    assert prefix == "[Member-post] "
    assert copy["Subject"] == prefix + post["Subject"]
    assert content_types(copy) == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                                   "text/calendar", "text/calendar", "text/plain"]
    sent, delivered = leaves(post), leaves(copy)
    assert delivered[:4] == sent  # text, HTML, inline invite and attached invite.ics, byte for byte
    assert [(kind, method_, name) for kind, method_, name, _ in sent] == [
        ("text/plain", None, None), ("text/html", None, None),
        ("text/calendar", "PUBLISH", None), ("text/calendar", "PUBLISH", "invite.ics")]
    assert method(sent[2][3]) == method(sent[3][3]) == "PUBLISH"
    footer = delivered[4][3].decode()
    assert f"To unsubscribe send an email to member-post-leave@{DOMAIN}" in footer
    assert "Dynamical Isometry" in sent[0][3].decode() and "<em>hundreds</em>" in sent[1][3].decode()


def test_a_non_member_post_with_approved_is_accepted_and_the_header_stripped(
        tmp_path: Path, mailman: MailmanCore, relay: Relay, sink: MailServer) -> None:
    address, list_id = make_list(mailman, "approved", moderator_password=MODERATOR_PASSWORD)
    Series(tmp_path, relay, address, sender=OUTSIDER, approved=True).send_due(ANNOUNCE_AT)
    post = last_post(relay)
    assert post["Approved"] == MODERATOR_PASSWORD  # sent as a header, as Mailman reads it

    found = copies(mailman, sink, post)
    assert mailman.held(list_id) == []
    for copy in found:
        assert copy["Approved"] is None
        assert MODERATOR_PASSWORD not in copy.as_string()


def test_a_non_member_post_without_approved_is_held(
        tmp_path: Path, mailman: MailmanCore, relay: Relay, sink: MailServer) -> None:
    address, list_id = make_list(mailman, "non-member", moderator_password=MODERATOR_PASSWORD)
    series = Series(tmp_path, relay, address, sender=OUTSIDER)
    series.send_due(ANNOUNCE_AT)
    post = last_post(relay)

    [hold] = held(mailman, list_id)
    assert hold["message_id"] == message_id(post)
    assert hold["sender"] == OUTSIDER
    assert hold["reason"] == "The message is not from a list member"
    assert copies_of(sink, post) == []


def test_with_content_filtering_the_attached_invite_still_reaches_members(
        tmp_path: Path, mailman: MailmanCore, relay: Relay, sink: MailServer) -> None:
    address, list_id = make_list(mailman, "filtered", filter_content=True)
    settings = mailman.rest("GET", f"lists/{list_id}/config")
    assert settings["collapse_alternatives"] is True and settings["pass_types"] == []  # Mailman's defaults
    Series(tmp_path, relay, address).send_due(ANNOUNCE_AT)
    post = last_post(relay)

    [copy] = copies(mailman, sink, post)
    sent, delivered = leaves(post), leaves(copy)
    assert "text/html" not in content_types(copy)  # the alternatives collapsed to the text
    assert delivered[0] == sent[0]
    calendars = [leaf for leaf in delivered if leaf[0] == "text/calendar"]
    assert calendars == [sent[3]]  # the inline invite went with the HTML; invite.ics stays, byte for byte
    assert method(calendars[0][3]) == "PUBLISH"


def test_an_update_threads_under_the_announcement_and_a_cancellation_reaches_members(
        tmp_path: Path, mailman: MailmanCore, relay: Relay, sink: MailServer) -> None:
    address, list_id = make_list(mailman, "changes")
    series = Series(tmp_path, relay, address)
    series.send_due(ANNOUNCE_AT)
    announcement = last_post(relay)
    copies(mailman, sink, announcement)

    series.talk(location="Eck 203")
    series.send_due("2027-02-15T10:00-05:00")
    update = last_post(relay)
    assert ids(update, "In-Reply-To") == [message_id(announcement)]
    [copy] = copies(mailman, sink, update)
    assert ids(copy, "In-Reply-To") == [message_id(announcement)]
    assert message_id(announcement) in ids(copy, "References")
    assert "Eck 203" in copy.get_body(("plain",)).get_content()

    series.talk(location="Eck 203", status="cancelled")
    series.send_due("2027-02-16T10:00-05:00")
    cancellation = last_post(relay)
    [copy] = copies(mailman, sink, cancellation)
    invites = [payload for kind, _, _, payload in leaves(copy) if kind == "text/calendar"]
    assert len(invites) == 2 and all(method(ics) == "CANCEL" for ics in invites)
    assert "CANCELLED" in copy["Subject"] and ids(copy, "In-Reply-To") == [message_id(announcement)]

    def archive_of_three() -> list[EmailMessage] | None:
        archived = mailman.archive(address)
        return archived if len(archived) == 3 else None

    archived = wait_for("the archive of all three posts", archive_of_three, DELIVERY_TIMEOUT, mailman.logs)
    assert [message_id(m) for m in archived] == [message_id(p) for p in (announcement, update, cancellation)]
    assert ids(archived[1], "In-Reply-To") == [message_id(announcement)]  # threaded under the announcement
    assert mailman.held(list_id) == []


def test_a_subject_that_begins_with_a_command_word_is_held_as_check_warns(
        tmp_path: Path, mailman: MailmanCore, relay: Relay, sink: MailServer) -> None:
    address, list_id = make_list(mailman, "command-word")
    series = Series(tmp_path, relay, address, subject_template="Who speaks next?\n")
    report = series.announcer("check", "--now", ANNOUNCE_AT)
    assert 'the Subject begins with "who", a Mailman command word' in report.stdout + report.stderr

    series.send_due(ANNOUNCE_AT)
    post = last_post(relay)
    [hold] = held(mailman, list_id)
    assert hold["message_id"] == message_id(post)
    assert hold["reason"] == "Message contains administrivia"
    assert copies_of(sink, post) == []


def test_a_post_over_40_kb_is_held_as_check_warns_unless_approved(
        tmp_path: Path, mailman: MailmanCore, relay: Relay, sink: MailServer) -> None:
    address, list_id = make_list(mailman, "too-long", moderator_password=MODERATOR_PASSWORD)
    assert mailman.rest("GET", f"lists/{list_id}/config")["max_message_size"] == 40  # Mailman's default, in KB
    series = Series(tmp_path / "member", relay, address)
    series.talk(more=LONG_ABSTRACT)
    report = series.announcer("check", "--now", ANNOUNCE_AT)
    assert "over the list's limit of 40 KB: Mailman holds it for a moderator" in report.stdout + report.stderr

    series.send_due(ANNOUNCE_AT)
    post = last_post(relay)
    assert len(relay.received[-1].content) > 40 * 1024
    [hold] = held(mailman, list_id)
    assert hold["message_id"] == message_id(post)
    assert hold["reason"] == "The message is larger than the 40 KB maximum size"
    assert copies_of(sink, post) == []

    approved = Series(tmp_path / "approved", relay, address, approved=True, domain="too-long-approved.example.org")
    approved.talk(more=LONG_ABSTRACT)
    approved.send_due(ANNOUNCE_AT)
    copies(mailman, sink, last_post(relay))
