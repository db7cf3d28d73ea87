"""`preview`: what would be sent, as text or .eml files, with Mailman's warnings and template errors."""

from pathlib import Path

from typer.testing import CliRunner

from announcer.cli import app

from series_files import BASE_CONFIG, PENNINGTON, series_with_a_broken_reminder_subject, write_series

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


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
