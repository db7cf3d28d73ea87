"""Templates run in Jinja's sandbox (SPEC 6): every known escape is a path:line error that
leaks no secret and runs no command, in preview, check and send alike."""

from __future__ import annotations

import mailbox

import pytest
from typer.testing import CliRunner

from announcer.cli import app

from conftest import write_config

runner = CliRunner()
SMTP_SECRET = "smtp-Secret-4711"
APPROVED_SECRET = "approved-Secret-0815"
TALK = """\
title: Dynamical Isometry
speaker: {name: Jeffrey Pennington, affiliation: Google}
start: 2027-02-21 14:00
"""
DUE = "2027-02-15T12:00:00Z"
MARK = "{mark}"  # a command that ran would create this file

ESCAPES = [
    "{{ lipsum.__globals__['os'].environ['APPROVED_PASSWORD'] }}",
    "{{ lipsum.__globals__.os.popen('touch {mark}').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch {mark}').read() }}",
    "{{ joiner.__init__.__globals__.os.environ }}",
    "{{ namespace.__init__.__globals__.os.environ }}",
    "{% set ns = namespace() %}{{ ns.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ dict.mro()[-1].__subclasses__() }}",
    "{{ talk|attr('__class__')|attr('__init__')|attr('__globals__') }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(talk) }}",
    "{{ '%s'|format(wrap.__globals__) }}",
    "{{ field.__globals__['__builtins__']['__import__']('os').popen('touch {mark}') }}",
    "{{ wrap.__globals__.os.environ['APPROVED_PASSWORD'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ talk.path.parent.joinpath('/proc/self/environ').read_text() }}",
    "{{ series.talks_dir.read_text() }}",
    "{{ talk.start.__class__.__init__ }}",
    "{{ range.__init__.__globals__ }}",
]


def series(tmp_path, template: str):
    config = write_config(tmp_path, series={"templates_dir": "templates"},
                          mail={"approved_password_env": "APPROVED_PASSWORD"})
    (tmp_path / "talks" / "pennington.yaml").write_text(TALK)
    (tmp_path / "templates").mkdir()
    body = "Hello.\n" + template.replace("{mark}", str(tmp_path / "ran")) + "\n"
    (tmp_path / "templates" / "announcement.txt.j2").write_text(body)
    return config


@pytest.fixture
def secrets_set(monkeypatch):
    monkeypatch.setenv("APPROVED_PASSWORD", APPROVED_SECRET)
    monkeypatch.setenv("ANNOUNCER_SMTP_PASSWORD", SMTP_SECRET)


@pytest.mark.parametrize("escape", ESCAPES)
def test_an_escape_is_a_path_line_error_that_leaks_nothing(tmp_path, secrets_set, escape):
    config = series(tmp_path, escape)
    template = tmp_path / "templates" / "announcement.txt.j2"
    for command in (["preview", "--now", DUE], ["check", "--now", DUE], ["send", "--due", "--now", DUE]):
        result = runner.invoke(app, ["--config", str(config), *command])
        assert result.exit_code == 1, (command, result.output)
        assert f"{template}:2: template error" in result.output, (command, result.output)
        assert "Traceback" not in result.output
        assert SMTP_SECRET not in result.output and APPROVED_SECRET not in result.output
    assert not (tmp_path / "ran").exists()
    outbox = tmp_path / "outbox"
    assert not outbox.exists() or len(mailbox.Maildir(outbox)) == 0


def test_ordinary_template_code_still_works(tmp_path, secrets_set):
    config = series(tmp_path, "{% set ns = namespace(n=0) %}{% for s in talk.speakers %}{% set ns.n = ns.n + 1 %}"
                              "{% endfor %}{{ ns.n }} speaker: {{ talk.speaker_line|upper }}, "
                              "{{ '%s at %s'|format(talk.title, talk.start|clock) }}")
    result = runner.invoke(app, ["--config", str(config), "preview", "--now", DUE])
    assert result.exit_code == 0, result.output
    assert "1 speaker: JEFFREY PENNINGTON (GOOGLE), Dynamical Isometry at 2:00 pm" in result.stdout
