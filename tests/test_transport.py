"""The transports against real aiosmtpd servers on 127.0.0.1 and real Maildir folders."""

from __future__ import annotations

import mailbox
import socket
import time
from dataclasses import replace
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from announcer.deliver.transport import DryRunTransport, MaildirTransport, SmtpTransport, open_transport
from announcer.errors import PermanentFailure, TemporaryFailure, UncertainDelivery
from announcer.sources.config import Smtp, load_config

from conftest import write_config
from smtp_server import PASSWORD, USERNAME, MailServer

LIST = "seminar-list@example.org"
SENDER = "seminar@example.org"


def make_message(number: int = 1, to: tuple[str, ...] = (LIST,)) -> EmailMessage:
    """A small announcement, built by hand."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = f"Test Seminar <{SENDER}>"
    message["To"] = ", ".join(to)
    message["Subject"] = f"Talk {number}: Größen und Maße"
    message["Message-ID"] = f"<talk-{number}.announcement@seminar.example.org>"
    message["Date"] = format_datetime(datetime(2027, 2, 14, 14, 0, tzinfo=timezone.utc))
    message.set_content(f"Talk {number}.\n.A line that starts with a dot.\n")
    return message


def settings(server: MailServer, **changes: object) -> Smtp:
    """SMTP settings for the server, trusting the test CA, logging in where the server wants it."""
    base = Smtp(host=server.host, port=server.port, security=server.security, username=server.username,
                password_env="ANNOUNCER_SMTP_PASSWORD", ca_file=server.ca_file, timeout=5.0)
    return replace(base, **changes)


def send(smtp: Smtp, *messages: EmailMessage, password: str | None = PASSWORD) -> None:
    with SmtpTransport(smtp, password) as transport:
        for message in messages:
            transport.send(message)


def test_starttls_with_auth_delivers_to_the_list(smtp_starttls: MailServer) -> None:
    message = make_message()
    send(settings(smtp_starttls), message)
    [received] = smtp_starttls.messages
    assert received.mail_from == SENDER
    assert received.rcpt_tos == (LIST,)
    parsed = received.message()
    assert parsed["Message-ID"] == message["Message-ID"]
    assert parsed["Subject"] == "Talk 1: Größen und Maße"
    assert ".A line that starts with a dot." in parsed.get_content()


def test_implicit_tls_delivers(smtp_tls: MailServer) -> None:
    send(settings(smtp_tls), make_message())
    assert [m.rcpt_tos for m in smtp_tls.messages] == [(LIST,)]


def test_plain_server_without_login_delivers(smtp_plain: MailServer) -> None:
    send(settings(smtp_plain), make_message(), password=None)
    assert len(smtp_plain.messages) == 1


def test_every_to_address_is_an_envelope_recipient(smtp_plain: MailServer) -> None:
    send(settings(smtp_plain), make_message(to=(LIST, "other-list@example.org")), password=None)
    assert smtp_plain.messages[0].rcpt_tos == (LIST, "other-list@example.org")


def test_one_connection_serves_a_pass(smtp_starttls: MailServer) -> None:
    send(settings(smtp_starttls), make_message(1), make_message(2))
    received = smtp_starttls.messages
    assert len(received) == 2
    assert smtp_starttls.connections == 1
    assert received[0].peer == received[1].peer


def test_no_connection_without_a_send(smtp_starttls: MailServer) -> None:
    with SmtpTransport(settings(smtp_starttls), PASSWORD):
        pass
    assert smtp_starttls.connections == 0


def test_reconnects_once_when_the_server_closed_an_idle_connection(smtp_starttls: MailServer) -> None:
    with SmtpTransport(settings(smtp_starttls), PASSWORD) as transport:
        transport.send(make_message(1))
        smtp_starttls.disconnect_clients()
        transport.send(make_message(2))
    assert len(smtp_starttls.messages) == 2
    assert smtp_starttls.connections == 2


def test_wrong_password_is_permanent_and_not_shown(smtp_starttls: MailServer) -> None:
    wrong = "not-the-Passw0rd-xyz"
    with pytest.raises(PermanentFailure) as failure:
        send(settings(smtp_starttls), make_message(), password=wrong)
    text = str(failure.value)
    assert text.startswith(f"127.0.0.1:{smtp_starttls.port}: authentication failed for 'mad'")
    assert "535" in text
    assert failure.value.connection  # the settings are wrong: the pass stops
    assert wrong not in text and PASSWORD not in text
    assert smtp_starttls.messages == []


def test_untrusted_certificate_is_permanent(smtp_starttls: MailServer) -> None:
    with pytest.raises(PermanentFailure, match="certificate verif") as failure:
        send(settings(smtp_starttls, ca_file=None), make_message())
    assert failure.value.connection
    assert smtp_starttls.messages == []


def test_untrusted_certificate_with_implicit_tls_is_permanent(smtp_tls: MailServer) -> None:
    with pytest.raises(PermanentFailure, match="certificate verif"):
        send(settings(smtp_tls, ca_file=None), make_message())


def test_starttls_required_but_not_offered_is_permanent(smtp_plain: MailServer, smtp_ca: Path) -> None:
    with pytest.raises(PermanentFailure, match="does not offer STARTTLS"):
        send(settings(smtp_plain, security="starttls", ca_file=smtp_ca), make_message(), password=None)
    assert smtp_plain.messages == []


def test_login_without_tls_is_refused_before_connecting(smtp_plain: MailServer) -> None:
    with pytest.raises(PermanentFailure, match="without TLS") as failure:
        send(settings(smtp_plain, username=USERNAME), make_message())
    assert PASSWORD not in str(failure.value)
    assert smtp_plain.connections == 0


def test_missing_password_is_permanent(smtp_starttls: MailServer) -> None:
    with pytest.raises(PermanentFailure, match=r"no password for 'mad' \(set \$ANNOUNCER_SMTP_PASSWORD\)"):
        send(settings(smtp_starttls), make_message(), password=None)


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_451_is_temporary_and_the_connection_stays_usable(smtp_starttls: MailServer, stage: str) -> None:
    smtp_starttls.fail(stage, 451)
    with SmtpTransport(settings(smtp_starttls), PASSWORD) as transport:
        with pytest.raises(TemporaryFailure, match="451 4.3.0"):
            transport.send(make_message(1))
        transport.send(make_message(2))
    assert [m.message()["Message-ID"] for m in smtp_starttls.messages] == [make_message(2)["Message-ID"]]
    assert smtp_starttls.connections == 1


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_550_is_permanent(smtp_starttls: MailServer, stage: str) -> None:
    smtp_starttls.fail(stage, 550)
    with pytest.raises(PermanentFailure, match="550 5.7.1") as failure:
        send(settings(smtp_starttls), make_message())
    assert not failure.value.connection  # this message's problem: the pass goes on
    assert smtp_starttls.messages == []


def test_one_refused_list_address_fails_the_message_and_sends_nothing(smtp_plain: MailServer) -> None:
    smtp_plain.fail("rcpt", 550, address="other-list@example.org")
    with pytest.raises(PermanentFailure, match="<other-list@example.org> 550"):
        send(settings(smtp_plain), make_message(to=(LIST, "other-list@example.org")), password=None)
    assert smtp_plain.messages == []


def test_drop_after_data_is_uncertain_and_the_server_has_it(smtp_starttls: MailServer) -> None:
    smtp_starttls.drop_after_data()
    with pytest.raises(UncertainDelivery, match="may have accepted it"):
        send(settings(smtp_starttls), make_message())
    assert len(smtp_starttls.messages) == 1


def test_no_reply_after_data_within_the_timeout_is_uncertain(smtp_plain: MailServer) -> None:
    smtp_plain.stall_after_data(seconds=3)
    started = time.monotonic()
    with pytest.raises(UncertainDelivery):
        send(settings(smtp_plain, timeout=0.5), make_message(), password=None)
    assert time.monotonic() - started < 2.5
    assert len(smtp_plain.messages) == 1


def test_after_an_uncertain_send_the_next_one_reconnects(smtp_plain: MailServer) -> None:
    smtp_plain.drop_after_data()
    with SmtpTransport(settings(smtp_plain), None) as transport:
        with pytest.raises(UncertainDelivery):
            transport.send(make_message(1))
        transport.send(make_message(2))
    assert len(smtp_plain.messages) == 2
    assert smtp_plain.connections == 2


def test_refused_connection_is_temporary(closed_port: int) -> None:
    smtp = Smtp(host="127.0.0.1", port=closed_port, security="none", username=None, password_env=None,
                ca_file=None, timeout=5.0)
    with pytest.raises(TemporaryFailure, match=f"^127.0.0.1:{closed_port}: connection refused$"):
        send(smtp, make_message(), password=None)


def test_server_that_never_greets_times_out_as_temporary() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        smtp = Smtp(host="127.0.0.1", port=silent.getsockname()[1], security="none", username=None,
                    password_env=None, ca_file=None, timeout=0.5)
        with pytest.raises(TemporaryFailure, match="timed out"):
            send(smtp, make_message(), password=None)


def test_implicit_tls_against_a_plain_server_is_permanent(smtp_plain: MailServer, smtp_ca: Path) -> None:
    with pytest.raises(PermanentFailure, match="TLS failed"):
        send(settings(smtp_plain, security="tls", ca_file=smtp_ca), make_message(), password=None)


def test_server_gone_between_sends_is_temporary(smtp_plain: MailServer) -> None:
    with SmtpTransport(settings(smtp_plain), None) as transport:
        transport.send(make_message(1))
        smtp_plain.stop()
        with pytest.raises(TemporaryFailure, match="connection refused"):
            transport.send(make_message(2))
    assert len(smtp_plain.messages) == 1


def test_describe_names_the_server_but_not_the_password(smtp_starttls: MailServer) -> None:
    text = SmtpTransport(settings(smtp_starttls), PASSWORD).describe()
    assert text == f"SMTP 127.0.0.1:{smtp_starttls.port} (STARTTLS, user 'mad')"


def test_maildir_is_created_and_reads_back(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "box"
    with MaildirTransport(folder) as transport:
        transport.send(make_message(1))
        transport.send(make_message(2))
    ids = sorted(message["Message-ID"] for message in mailbox.Maildir(folder, create=False))
    assert ids == [make_message(1)["Message-ID"], make_message(2)["Message-ID"]]


def test_unwritable_maildir_is_permanent_and_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PermanentFailure, match=f"^{blocker / 'box'}: cannot write"):
        MaildirTransport(blocker / "box").send(make_message())


def test_dry_run_transport_counts_and_sends_nothing() -> None:
    with DryRunTransport() as transport:
        transport.send(make_message())
        transport.send(make_message())
    assert transport.count == 2
    assert "nothing is sent" in transport.describe()


def test_open_transport_follows_the_config(tmp_path: Path, smtp_starttls: MailServer) -> None:
    (tmp_path / "a").mkdir()
    smtp_config = load_config(write_config(tmp_path / "a", smtp_starttls))
    transport = open_transport(smtp_config, PASSWORD)
    assert isinstance(transport, SmtpTransport)
    with transport:
        transport.send(make_message())
    assert smtp_starttls.messages[0].rcpt_tos == (LIST,)

    (tmp_path / "b").mkdir()
    maildir_config = load_config(write_config(tmp_path / "b"))
    assert isinstance(open_transport(maildir_config, None), MaildirTransport)
    assert maildir_config.maildir == tmp_path / "b" / "outbox"
