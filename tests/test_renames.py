"""Renames (SPEC 8.5): a new id with the speaker and title of an announced talk whose file is gone
is refused until its file says `id: OLD-ID` or `new_talk: true`. Real ledger, real Maildir."""

from __future__ import annotations

import mailbox
from email import message_from_bytes, policy

from typer.testing import CliRunner

from announcer.cli import app

from conftest import write_config

runner = CliRunner()
TALK = """\
{extra}title: {title}
speaker: {{name: {speaker}, affiliation: EPFL}}
start: {start}
"""
ANNOUNCED = "2027-02-14T15:00:00Z"   # the announcement of a talk on 2027-02-21 is due
OTHER_DUE = "2027-02-15T15:00:00Z"   # and that of the other talk, on the 22nd


def talk(title="Statistical Physics of Learning", speaker="Lenka Zdeborová", start="2027-02-21 14:00", extra=""):
    return TALK.format(title=title, speaker=speaker, start=start, extra=extra)


def run(config, *args):
    return runner.invoke(app, ["--config", str(config), *args])


def messages(tmp_path):
    box = tmp_path / "outbox"
    if not box.exists():
        return []
    return [message_from_bytes(m.as_bytes(), policy=policy.default) for m in mailbox.Maildir(box)]


def announced_then_renamed(tmp_path, new_text: str):
    config = write_config(tmp_path)
    talks = tmp_path / "talks"
    (talks / "2027-02-21-zdeborova.yaml").write_text(talk())
    (talks / "other.yaml").write_text(talk(title="Another Talk", speaker="Ada Lovelace", start="2027-02-22 14:00"))
    assert run(config, "send", "--due", "--now", ANNOUNCED).exit_code == 0
    assert len(messages(tmp_path)) == 1
    (talks / "2027-02-21-zdeborova.yaml").unlink()
    (talks / "zdeborova.yaml").write_text(new_text)
    return config, talks / "zdeborova.yaml"


def test_a_renamed_file_is_refused_naming_both_ids(tmp_path):
    # the same talk after NFC, case-folding and collapsing whitespace: "á" decomposed, other case, spaces
    config, path = announced_then_renamed(tmp_path, talk(title="statistical  PHYSICS of learning",
                                                         speaker="Lenka  Zdeborova\u0301"))
    expected = (f'{path}:1: talk "zdeborova" has the speaker and title of "2027-02-21-zdeborova", which was '
                'announced and whose file is gone')
    checked = run(config, "check", "--now", "2027-01-01T00:00:00Z")  # whatever the time
    assert checked.exit_code == 1
    assert expected in checked.stderr

    result = run(config, "send", "--due", "--now", OTHER_DUE)
    assert result.exit_code == 1
    assert result.stderr.startswith(expected) and 'id: 2027-02-21-zdeborova' in result.stderr
    assert result.stdout.splitlines()[-1] == "1 sent, 0 retry, 0 failed, 0 uncertain"  # the other talk went
    assert [str(m["Subject"]).endswith("Another Talk") for m in messages(tmp_path)].count(True) == 1
    assert len(messages(tmp_path)) == 2

    one = run(config, "send", "zdeborova", "--kind", "announcement")
    assert one.exit_code == 1 and expected in one.stderr
    assert len(messages(tmp_path)) == 2
    shown = run(config, "plan", "--now", OTHER_DUE)
    assert expected in shown.stdout


def test_id_old_id_keeps_the_talk_and_sends_an_update_with_its_uid_when_it_moved(tmp_path):
    config, path = announced_then_renamed(tmp_path, talk(extra="id: 2027-02-21-zdeborova\n", start="2027-02-21 15:00"))
    assert run(config, "check", "--now", OTHER_DUE).exit_code == 0
    result = run(config, "send", "--due", "--now", OTHER_DUE)
    assert result.exit_code == 0, result.output
    sent = {str(m["Subject"]): m for m in messages(tmp_path)}
    assert len(sent) == 3  # the announcement, the other talk's, and an update (no second announcement)
    update = next(m for subject, m in sent.items() if "Zdeborov" in subject and m["In-Reply-To"])
    announcement = next(m for subject, m in sent.items() if "Zdeborov" in subject and not m["In-Reply-To"])

    def uid(message):
        invite = next(part for part in message.walk() if part.get_content_type() == "text/calendar")
        return next(line for line in invite.get_content().splitlines() if line.startswith("UID:"))

    assert uid(update) == uid(announcement)


def test_new_talk_true_is_announced_as_another_talk(tmp_path):
    config, path = announced_then_renamed(tmp_path, talk(extra="new_talk: true\n"))
    assert run(config, "check", "--now", OTHER_DUE).exit_code == 0
    result = run(config, "send", "--due", "--now", OTHER_DUE)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2 sent, 0 retry, 0 failed, 0 uncertain"


def test_new_talk_must_be_true_or_false(tmp_path):
    config, path = announced_then_renamed(tmp_path, talk(extra="new_talk: maybe\n"))
    result = run(config, "check")
    assert result.exit_code == 1 and f"{path}:1: new_talk must be true or false" in result.stderr


def test_the_daemon_logs_a_rename_once_and_does_not_wake_for_it(tmp_path):
    from datetime import datetime, timezone

    from announcer.run.daemon import DaemonCore
    from announcer.sources.config import load_config

    config, path = announced_then_renamed(tmp_path, talk())
    lines: list[str] = []
    core = DaemonCore(load_config(config), lines.append)
    now = datetime(2027, 2, 15, 15, 0, tzinfo=timezone.utc)
    try:
        core.run_pass(now)
        core.run_pass(now)
        wake = core.next_wake(now)
    finally:
        core.close()
    assert sum('talk "zdeborova" has the speaker and title of "2027-02-21-zdeborova"' in line for line in lines) == 1
    assert wake is not None and wake.what != "zdeborova announcement" and wake.at > now
    assert len(messages(tmp_path)) == 2  # the first announcement and the other talk's; none for the rename
