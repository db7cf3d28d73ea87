import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from announcer import __version__
from announcer.cli import app
from announcer.errors import AnnouncerError

from series_files import BASE_CONFIG, PENNINGTON, write_series

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_installed_script_help_runs():
    script = shutil.which("announcer", path=str(Path(sys.executable).parent))
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("init", "check", "plan", "preview", "send", "daemon", "log"):
        assert command in result.stdout


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "announcer", "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"announcer {__version__}"


def test_the_script_exits_with_every_line_written_and_its_exit_code(tmp_path):
    talks = {f"t{n:03d}.yaml": f"title: Talk {n}\nspeaker: A. Speaker\nstart: 2027-03-{1 + n % 28:02d} 14:00\n"
             for n in range(300)}
    config = write_series(tmp_path, talks)
    script = shutil.which("announcer", path=str(Path(sys.executable).parent))
    plan = subprocess.run([script, "--config", config, "plan", "--json", "--now", "2027-01-01T00:00Z"],
                          capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    assert len(json.loads(plan.stdout)) == 600  # 60 KB through a pipe, none of it lost at exit
    missing = subprocess.run([script, "--config", tmp_path / "nowhere.toml", "plan"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "nowhere.toml" in missing.stderr and missing.stdout == ""


EXITING = """
import atexit, sys, threading, time
from announcer.cli import exit_now
atexit.register(lambda: print("exit handlers ran"))
if sys.argv[1] == "thread":  # a thread still at work is waited for, as at a usual exit
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread done"))).start()
exit_now("stopped: a message" if sys.argv[1] == "message" else 3)
"""


@pytest.mark.parametrize("case, code, out, err", [
    ("plain", 3, "exit handlers ran\n", ""),
    ("thread", 3, "thread done\nexit handlers ran\n", ""),
    ("message", 1, "exit handlers ran\n", "stopped: a message\n"),
])
def test_exit_now_runs_exit_handlers_and_waits_for_threads(case, code, out, err):
    done = subprocess.run([sys.executable, "-c", EXITING, case], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (code, out, err)


def test_the_script_exits_cleanly_with_its_output_closed():
    script = shutil.which("announcer", path=str(Path(sys.executable).parent))
    done = subprocess.run(f"'{script}' --version >&-", shell=True, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_init_writes_a_working_series_and_refuses_to_overwrite(tmp_path):
    result = run("init", tmp_path / "new")
    assert result.exit_code == 0, result.output
    for name in ("announcer.toml", "talks/2027-02-21-example.yaml", "templates/README.txt"):
        assert (tmp_path / "new" / name).is_file()
    checked = run("--config", tmp_path / "new" / "announcer.toml", "check", "--now", "2027-01-01T00:00Z")
    assert checked.exit_code == 0, checked.output
    again = run("init", tmp_path / "new")
    assert again.exit_code == 1
    assert "already exists; init never overwrites" in again.stderr
    assert "Traceback" not in again.output


def test_an_override_dropped_into_the_templates_folder_of_init_takes_effect(tmp_path):
    run("init", tmp_path / "new")
    config = tmp_path / "new" / "announcer.toml"
    assert re.search(r'^templates_dir = "templates"', config.read_text(), re.MULTILINE)
    (tmp_path / "new" / "templates" / "announcement.subject.j2").write_text("Talk: {{ talk.title }}\n")
    previewed = run("--config", config, "preview", "2027-02-21-example", "--kind", "announcement",
                    "--now", "2027-01-01T00:00Z")
    assert previewed.exit_code == 0, previewed.output
    assert "Subject: Talk: Dynamical Isometry" in previewed.stdout
    (tmp_path / "new" / "templates" / "reminder.txt.j2").write_text("{{ talk.nothing }}\n")
    checked = run("--config", config, "check", "--now", "2027-01-01T00:00Z")
    assert checked.exit_code == 1
    assert f"{tmp_path}/new/templates/reminder.txt.j2:1: template error" in checked.stderr


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


def test_an_empty_slot_is_listed_as_tba_warned_about_and_never_mailed(tmp_path):
    config = write_series(tmp_path, {"slot.yaml": "start: 2027-02-28 14:00\n"})
    plan = run("--config", config, "plan", "--now", "2027-02-01T00:00Z")
    assert plan.stdout.splitlines()[1:] == ["Sun 2027-02-21 09:00 EST  slot  announcement  tba",
                                            "Sun 2027-02-28 13:00 EST  slot  reminder      tba"]
    early = run("--config", config, "check", "--now", "2027-02-13T00:00Z")
    assert early.exit_code == 0 and early.stderr == ""
    close = run("--config", config, "check", "--now", "2027-02-14T15:00Z")
    assert close.exit_code == 0
    assert close.stderr == (f'{tmp_path}/talks/slot.yaml:1: warning: talk "slot" is an empty slot (no speaker, '
                            "no title): its announcement, due Sun 2027-02-21 09:00 EST, is not sent until it "
                            "has one\n")
    due = run("--config", config, "send", "--due", "--now", "2027-02-28T18:30Z")
    assert (due.exit_code, due.stdout) == (0, "0 sent, 0 retry, 0 failed, 0 uncertain\n")
    forced = run("--config", config, "send", "slot", "--kind", "announcement", "--force")
    assert forced.exit_code == 1
    assert "slot announcement: the talk is an empty slot (no speaker, no title)" in forced.stderr
    assert not (tmp_path / "outbox").exists()
    assert "nothing recorded" in run("--config", config, "log").stdout
    preview = run("--config", config, "preview", "--now", "2027-02-01T00:00Z")
    assert (preview.exit_code, preview.stdout) == (0, "")


def test_check_on_the_example_config():
    result = run("--config", ROOT / "config.example.toml", "check", "--now", "2027-01-01T00:00Z")
    assert result.exit_code == 0, result.output
    assert "10 talks, 20 messages planned: 0 errors" in result.stdout


def test_plan_json_has_the_spec_keys(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    result = run("--config", config, "plan", "--json", "--now", "2027-02-15T00:00Z")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows == [
        {"talk": "pennington", "kind": "announcement", "due": "2027-02-14T09:00:00-05:00", "state": "due"},
        {"talk": "pennington", "kind": "reminder", "due": "2027-02-21T13:00:00-05:00", "state": "pending"},
    ]


def test_plan_hides_past_messages_unless_all(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    late = run("--config", config, "plan", "--now", "2027-03-01T00:00Z")
    assert late.exit_code == 0 and "nothing planned" in late.stdout
    everything = run("--config", config, "plan", "--all", "--now", "2027-03-01T00:00Z")
    assert "missed" in everything.stdout and "announcement" in everything.stdout


def test_plan_table(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    result = run("--config", config, "plan", "--now", "2027-02-15T00:00Z")
    assert result.stdout.splitlines() == [
        "DUE (America/New_York)    TALK        KIND          STATE",
        "Sun 2027-02-14 09:00 EST  pennington  announcement  due",
        "Sun 2027-02-21 13:00 EST  pennington  reminder      pending",
    ]


def test_plan_all_shows_a_sent_message_when_it_went_out_not_its_recomputed_due_time(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    sent = run("--config", config, "send", "--due", "--now", "2027-02-15T12:30-05:00")  # a day late
    assert sent.exit_code == 0, sent.output
    (tmp_path / "talks" / "pennington.yaml").write_text(PENNINGTON.replace("2027-02-21", "2027-02-25"))
    result = run("--config", config, "plan", "--all", "--now", "2027-02-16T00:00Z")
    assert result.stdout.splitlines() == [
        "DUE (America/New_York)    TALK        KIND          STATE",
        "Mon 2027-02-15 12:30 EST  pennington  announcement  sent",
        "Mon 2027-02-15 19:00 EST  pennington  update        due",
        "Thu 2027-02-25 13:00 EST  pennington  reminder      pending",
    ]
    rows = json.loads(run("--config", config, "plan", "--all", "--json", "--now", "2027-02-16T00:00Z").stdout)
    assert rows[0] == {"talk": "pennington", "kind": "announcement", "due": "2027-02-18T09:00:00-05:00",
                       "state": "sent", "sent": "2027-02-15T12:30:00-05:00"}
    assert all("sent" not in row for row in rows[1:])


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


def test_plan_refuses_bad_input(tmp_path):
    config = write_series(tmp_path, {"bad.yaml": "title: T\nstart: 14:00\n"})
    result = run("--config", config, "plan")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tmp_path}/talks/bad.yaml:2:")


def test_missing_config_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("plan", env={"ANNOUNCER_CONFIG": ""})
    assert result.exit_code == 1
    assert result.stderr.strip() == ("announcer.toml: no such config file (give --config PATH, set "
                                     "$ANNOUNCER_CONFIG, or run `announcer init`)")


@pytest.mark.parametrize("args", [["send"], ["send", "talk"], ["send", "--due", "--force"], ["plan", "--bogus"]])
def test_usage_errors_exit_2(tmp_path, args):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    assert run("--config", config, *args).exit_code == 2


def test_bad_now_is_one_line(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    result = run("--config", config, "plan", "--now", "tomorrow")
    assert result.exit_code == 1
    assert result.stderr.strip() == "--now 'tomorrow' is not an ISO 8601 time such as 2027-02-14T09:00-05:00"


def test_preview_writes_eml_files_a_mail_client_opens(tmp_path):
    import email
    from email import policy

    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    out = tmp_path / "previews"
    result = run("--config", config, "preview", "--out", out, "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["pennington.announcement.eml", "pennington.reminder.eml"]
    message = email.message_from_bytes((out / names[0]).read_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/mixed" and message.defects == []
    assert "Jeffrey Pennington" in message["Subject"]
    assert not (tmp_path / "announcer.db").exists()  # a preview records nothing


def test_preview_text_to_stdout_and_kind_filter(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON})
    result = run("--config", config, "preview", "pennington", "--kind", "reminder", "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("From: MaD Seminar <mad-organizers@example.edu>")
    assert "In-Reply-To:" in result.stdout and "Abstract" not in result.stdout
    missing = run("--config", config, "preview", "pennington", "--kind", "update")
    assert missing.exit_code == 1 and "no update message planned" in missing.stderr


def test_preview_warns_about_size(tmp_path):
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON},
                          config=BASE_CONFIG.replace('to = ["mad@lists.example.edu"]',
                                                     'to = ["mad@lists.example.edu"]\nmax_size = "2KB"'))
    result = run("--config", config, "preview", "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 0
    assert "pennington announcement: the message is" in result.stderr
    assert "over the list's limit of 2 KB: Mailman holds it for a moderator" in result.stderr


def series_with_a_broken_reminder_subject(tmp_path):
    """Pennington, with an overriding reminder subject whose line 2 names an undefined attribute."""
    (tmp_path / "overrides").mkdir(parents=True)
    (tmp_path / "overrides" / "reminder.subject.j2").write_text("Soon: {{ talk.title }}\n{{ talk.room }}\n")
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON},
                          config=BASE_CONFIG.replace('domain = "mad.example.edu"',
                                                     'domain = "mad.example.edu"\ntemplates_dir = "overrides"'))
    return config


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


def test_preview_reports_every_message_whose_template_fails_and_writes_the_others(tmp_path):
    config = series_with_a_broken_reminder_subject(tmp_path)
    (tmp_path / "talks" / "second.yaml").write_text(PENNINGTON.replace("2027-02-21", "2027-02-28"))
    out = tmp_path / "previews"
    result = run("--config", config, "preview", "--out", out, "--now", "2027-02-01T00:00Z")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{talk} reminder: {tmp_path}/overrides/reminder.subject.j2:2: template error: "
        "'announcer.sources.talk.Talk object' has no attribute 'room'" for talk in ("pennington", "second")]
    written = ["pennington.announcement.eml", "second.announcement.eml"]
    assert sorted(path.name for path in out.iterdir()) == written
    assert result.stdout == "".join(f"wrote {out / name}\n" for name in written)
