"""`check`: every problem with its place, counted as `plan` counts, every message rendered and the risky ones built."""

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from announcer.cli import app
from announcer.errors import AnnouncerError

from series_files import BASE_CONFIG, PENNINGTON, series_with_a_broken_reminder_subject, write_series

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_check_reports_every_problem_with_place(tmp_path):
    config = write_series(tmp_path, {"ok.yaml": PENNINGTON, "bad.yaml": "title: T\nstart: 14:00\n",
                                     "worse.yaml": "title: T\nstart: 2027-03-14 02:30\nsubtitle: x\n"})
    result = run("--config", config, "check")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert f"{tmp_path}/talks/bad.yaml:2: \"start: 840\" was read as a number" in lines[0]
    assert any(line.startswith(f"{tmp_path}/talks/worse.yaml:2: 2027-03-14 02:30 does not exist") for line in lines)
    assert any(line.startswith(f"{tmp_path}/talks/worse.yaml:3: unknown key \"subtitle\"") for line in lines)
    assert "3 errors" in result.stdout
    assert "Traceback" not in result.output


def test_check_warns_about_tba_announcement_within_48_hours(tmp_path):
    config = write_series(tmp_path, {"tba.yaml": "speaker: Ahmed El Alaoui\nstart: 2027-02-28 14:00\n"})
    early = run("--config", config, "check", "--now", "2027-02-01T00:00Z")
    assert early.exit_code == 0 and "TBA" not in early.stderr
    close = run("--config", config, "check", "--now", "2027-02-20T12:00Z")
    assert close.exit_code == 0
    assert f"{tmp_path}/talks/tba.yaml:1: warning: talk \"tba\" has no title (TBA)" in close.stderr


def test_check_on_the_example_config(tmp_path):
    # A copy: the README's first set-up command sends from the example series and leaves a ledger.
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.example.toml")
    shutil.copytree(ROOT / "talks", tmp_path / "talks")
    result = run("--config", tmp_path / "config.example.toml", "check", "--now", "2027-01-01T00:00Z")
    assert result.exit_code == 0, result.output
    assert "10 talks, 20 messages planned: 0 errors" in result.stdout


def test_check_counts_the_messages_plan_shows(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON, "later.yaml": PENNINGTON.replace("02-21", "03-21")})
    for now, planned in [("2027-02-01T00:00Z", 4), ("2027-02-28T00:00Z", 2), ("2027-04-01T00:00Z", 0)]:
        shown = run("--config", config, "plan", "--json", "--now", now)
        checked = run("--config", config, "check", "--now", now)
        assert len(json.loads(shown.stdout)) == planned
        assert checked.stdout == f"2 talks, {planned} message{'s' * (planned != 1)} planned: 0 errors, 0 warnings\n"
    assert run("--config", config, "send", "--due", "--now", "2027-02-14T09:00-05:00").exit_code == 0
    assert run("--config", config, "check", "--now", "2027-02-14T10:00-05:00").stdout.startswith(
        "2 talks, 3 messages planned")


def test_check_finds_a_broken_template_when_no_message_is_planned(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    config.write_text(config.read_text().replace("[mail]", 'templates_dir = "t"\n\n[mail]'))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "reminder.txt.j2").write_text("{% if %}\n")
    result = run("--config", config, "check", "--now", "2027-04-01T00:00Z")
    assert result.exit_code == 1
    assert f"{tmp_path}/t/reminder.txt.j2:1: template syntax error" in result.stderr


def test_check_reports_a_broken_template_override_with_its_line(tmp_path):
    config = series_with_a_broken_reminder_subject(tmp_path)
    result = run("--config", config, "check", "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tmp_path}/overrides/reminder.subject.j2:2: ")
    assert "room" in result.stderr.splitlines()[0]
    # The announcement renders and goes out; the reminder is bad input, reported, and stays due.
    sent = run("--config", config, "send", "--due", "--now", "2027-02-21T18:30Z")
    assert sent.exit_code == 1
    assert f"invalid   pennington reminder: {tmp_path}/overrides/reminder.subject.j2:2:" in sent.stdout
    plan = run("--config", config, "plan", "--now", "2027-02-21T18:30Z")
    assert plan.stdout.splitlines()[-1].split()[-2:] == ["reminder", "due"]
    (tmp_path / "overrides" / "reminder.subject.j2").write_text("Soon: {{ talk.title }\n")
    broken = run("--config", config, "send", "pennington", "--kind", "reminder")
    assert broken.exit_code == 1 and "reminder.subject.j2:1:" in broken.stderr


@pytest.mark.parametrize("limit", ["2KB", "6KB", "7KB", "8KB", "9KB", "40KB"])
def test_check_and_preview_flag_the_same_messages_as_too_large(tmp_path, limit):
    # check measures a message only when its size bound is over the limit: it must still flag
    # exactly the messages preview flags, with the same size.
    long = PENNINGTON.replace("have grown deep.", "have grown deep. " + "Deeper still, and wider. " * 40)
    config = write_series(tmp_path, {"pennington.yaml": long, "short.yaml": PENNINGTON.replace("21", "28")},
                          config=BASE_CONFIG.replace('to = ["mad@lists.example.edu"]',
                                                     f'to = ["mad@lists.example.edu"]\nmax_size = "{limit}"'))
    check = run("--config", config, "check", "--now", "2027-02-01T00:00Z")
    preview = run("--config", config, "preview", "--now", "2027-02-01T00:00Z")
    assert check.exit_code == 0 and preview.exit_code == 0
    flagged_by_check = sorted(re.findall(r"talks/(\w+)\.yaml:\d+: warning: (\w+): the message is ([\d.]+ KB)",
                                         check.stderr))
    flagged_by_preview = sorted(re.findall(r"(\w+) (\w+): the message is ([\d.]+ KB)", preview.stderr))
    assert flagged_by_check == flagged_by_preview
    if limit == "2KB":
        assert len(flagged_by_check) == 4
    if limit == "40KB":
        assert flagged_by_check == []


def test_check_builds_the_first_message_of_each_kind_in_full(tmp_path, monkeypatch):
    # What only building a message meets (here an invite that cannot be made) reaches check
    # through the first message of each kind; a message whose size is safe is not built.
    def failing_invite(config, talk, *, method, sequence, now, sequences=()):
        raise AnnouncerError(f"no invite for {talk.id}")

    monkeypatch.setattr("announcer.compose.message.build_invite", failing_invite)
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON,
                                     "second.yaml": PENNINGTON.replace("2027-02-21", "2027-02-28")})
    result = run("--config", config, "check", "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 1
    errors = [line.split(": ", 1)[1] for line in result.stderr.splitlines()]
    assert errors == ["announcement: no invite for pennington", "reminder: no invite for pennington"]
    assert "2 talks, 4 messages planned: 2 errors" in result.stdout


def test_check_builds_the_next_message_of_a_kind_whose_first_fails_to_render(tmp_path, monkeypatch):
    def failing_invite(config, talk, *, method, sequence, now, sequences=()):
        raise AnnouncerError(f"no invite for {talk.id}")

    monkeypatch.setattr("announcer.compose.message.build_invite", failing_invite)
    (tmp_path / "overrides").mkdir()
    (tmp_path / "overrides" / "announcement.subject.j2").write_text(
        '{% if talk.id == "pennington" %}{{ talk.room }}{% endif %}{{ talk.title }}\n')
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON,
                                     "second.yaml": PENNINGTON.replace("2027-02-21", "2027-02-28")},
                          config=BASE_CONFIG.replace('domain = "mad.example.edu"',
                                                     'domain = "mad.example.edu"\ntemplates_dir = "overrides"'))
    result = run("--config", config, "check", "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 1
    errors = [line.split(": ", 1)[1] for line in result.stderr.splitlines()]
    assert errors[1:] == ["announcement: no invite for second", "reminder: no invite for pennington"]
    assert "'announcer.sources.talk.Talk object' has no attribute 'room'" in errors[0]
