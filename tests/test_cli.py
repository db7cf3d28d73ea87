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

from series_files import PENNINGTON, write_series

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
