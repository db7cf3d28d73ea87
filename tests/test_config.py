from pathlib import Path

import pytest

from announcer.errors import InputError
from announcer.sources.config import find_config, load_config

from series_files import BASE_CONFIG, write_series

ROOT = Path(__file__).resolve().parent.parent


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


def test_example_config_loads_and_matches_init_skeleton():
    config = load_config(ROOT / "config.example.toml")
    assert config.series.name == "MaD Seminar"
    assert config.series.timezone.key == "America/New_York"
    assert config.transport == "maildir"
    assert config.maildir == ROOT / "outbox"
    assert config.series.talks_dir == ROOT / "talks"
    assert [(r.kind, r.before_text) for r in config.messages] == [("announcement", "7d"), ("reminder", "1h")]
    assert config.series.templates_dir is None
    # init's config names the templates/ folder it writes; here templates/ holds the built-ins.
    skeleton = (ROOT / "announcer" / "skeleton" / "announcer.toml").read_text()
    assert skeleton.replace('\ntemplates_dir = "templates"  ', '\n# templates_dir = "templates"') == (
        ROOT / "config.example.toml").read_text()


def test_paths_are_relative_to_the_config_file(tmp_path):
    path = write_series(tmp_path / "series", {}, extra='[state]\npath = "state/ledger.db"\n')
    config = load_config(path)
    assert config.ledger_path == tmp_path / "series" / "state" / "ledger.db"
    assert config.maildir == tmp_path / "series" / "outbox"
    assert config.series.talks_dir == tmp_path / "series" / "talks"


def test_domain_defaults_to_the_from_domain(tmp_path):
    path = write_series(tmp_path, {}, config=BASE_CONFIG.replace('domain = "mad.example.edu"\n', ""))
    assert load_config(path).series.domain == "example.edu"


def test_unknown_key_with_hint_and_line(tmp_path):
    path = write_series(tmp_path, {}, config=BASE_CONFIG.replace("timezone =", "timezon ="))
    assert problems_of(path)[0] == (f'{path}:3: unknown key "timezon" in [series] (did you mean "timezone"?)')


def test_every_problem_in_one_run(tmp_path):
    config = (BASE_CONFIG.replace('"America/New_York"', '"America/Nowhere"')
              .replace('before = "1h"', 'before = "1 hour"') + "[smtp]\nhost = 'x'\npassword = 'hunter2'\n")
    messages = problems_of(write_series(tmp_path, {}, config=config))
    text = "\n".join(messages)
    assert "unknown timezone 'America/Nowhere'" in text
    assert "announcer.toml:19:" in text and "is not a duration" in text
    assert "never write the password in the file" in text
    assert "hunter2" not in text


def test_unquoted_time_of_day_explains(tmp_path):
    path = write_series(tmp_path, {}, config=BASE_CONFIG.replace('at = "09:00"', "at = 09:00:00"))
    assert problems_of(path)[0] == (f'{path}:15: "at": 09:00:00 is not a time of day: '
                                    'write it quoted, as "09:00"')


def test_invalid_toml_names_line(tmp_path):
    path = write_series(tmp_path, {}, config=BASE_CONFIG.replace('name = "MaD Seminar"', 'name = "MaD'))
    assert problems_of(path)[0].startswith(f"{path}:2: not valid TOML")


def test_smtp_transport_needs_smtp_table(tmp_path):
    path = write_series(tmp_path, {}, config=BASE_CONFIG.replace('transport = "maildir"', 'transport = "smtp"'))
    assert 'transport "smtp" needs an [smtp] table' in problems_of(path)[0]


def test_reserved_and_duplicate_kinds(tmp_path):
    extra = '[[messages]]\nkind = "update"\nbefore = "1d"\n[[messages]]\nkind = "reminder"\nbefore = "1h"\n'
    text = "\n".join(problems_of(write_series(tmp_path, {}, extra=extra)))
    assert '"update" messages are sent automatically' in text
    assert '"reminder" 1h before is listed twice' in text


def test_config_lookup_order(tmp_path, monkeypatch):
    a = write_series(tmp_path / "a", {})
    b = write_series(tmp_path / "b", {})
    monkeypatch.chdir(tmp_path / "a")
    monkeypatch.delenv("ANNOUNCER_CONFIG", raising=False)
    assert find_config(None) == Path("announcer.toml")
    monkeypatch.setenv("ANNOUNCER_CONFIG", str(b))
    assert find_config(None) == b
    assert find_config(str(a)) == a
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANNOUNCER_CONFIG")
    with pytest.raises(InputError, match="no such config file"):
        find_config(None)


@pytest.mark.parametrize("line_break", ["\\n", "\\r", "\\u2028", "\\u0085", "\\u000b"])
def test_an_address_with_any_line_break_is_refused_at_load(tmp_path, line_break):
    # Python's header code refuses what str.splitlines splits on; caught here, not at send time.
    config = BASE_CONFIG.replace('from = "MaD Seminar <', f'from = "MaD{line_break}Seminar <')
    messages = problems_of(write_series(tmp_path, {}, config=config))
    assert messages == [f'{tmp_path / "announcer.toml"}:9: "from" must be an e-mail address on one line']
