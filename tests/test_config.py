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


# Bad input (SPEC 6): a config that passes check must work and cannot mislead


def problems_with(tmp_path, old: str, new: str, extra: str = "") -> list[str]:
    config = BASE_CONFIG.replace(old, new)
    assert config != BASE_CONFIG or not old
    return [p.replace(f"{tmp_path / 'announcer.toml'}:", "announcer.toml:")
            for p in problems_of(write_series(tmp_path, {}, config=config, extra=extra))]


DOMAIN = 'domain = "mad.example.edu"'
FROM = 'from = "MaD Seminar <mad-organizers@example.edu>"'


@pytest.mark.parametrize("domain, why", [
    ("x.example> <evil@a.b", "'x.example> <evil@a.b' is not a host name"),
    ("mad\\u2028example.edu", "holds the line separator U+2028"),
    ("mad\\u000bexample.edu", "holds the control character U+000B"),
    ("mad example.edu", "'mad example.edu' is not a host name"),
    ("a" * 64 + ".example.edu", "is not a host name"),
    ("x." * 600 + "edu", "is 1203 characters long: at most 300"),
])
def test_a_domain_must_be_a_host_name(tmp_path, domain, why):
    found = problems_with(tmp_path, DOMAIN, f'domain = "{domain}"')
    assert len(found) == 1 and found[0].startswith('announcer.toml:6: "domain"') and why in found[0], found


@pytest.mark.parametrize("sender", [
    "Evil Bcc: x@evil.example <mad-organizers@example.edu>",   # a group: would send as x@evil.example
    "Evil <mad-organizers@example.edu> x@evil.example",
    "mad-organizers@example.edu, x@evil.example",
    "Seminar: mad-organizers@example.edu;",
    "Seminar <mad-organizers@[127.0.0.1]>",
    "W" * 2400 + " <mad-organizers@example.edu>",
    "Seminar <mad-organizers@" + "x." * 600 + "edu>",
])
def test_from_must_be_exactly_one_address(tmp_path, sender):
    found = problems_with(tmp_path, FROM, f'from = "{sender}"')
    assert len(found) == 1 and found[0].startswith('announcer.toml:9: "from": '), found
    assert "x@evil.example" not in found[0][found[0].index(" is not "):]


@pytest.mark.parametrize("key", ["to", "reply_to"])
def test_to_and_reply_to_entries_must_be_exactly_one_address_each(tmp_path, key):
    value = '["List <mad@lists.example.edu>, Evil <x@evil.example>"]' if key == "to" else '"a@example.edu, x@evil.example"'
    found = problems_with(tmp_path, 'to = ["mad@lists.example.edu"]',
                          f'to = {value}' if key == "to" else f'to = ["mad@lists.example.edu"]\nreply_to = {value}')
    assert len(found) == 1 and found[0].startswith(f'announcer.toml:{10 if key == "to" else 11}: "{key}": ')
    assert "is not exactly one e-mail address" in found[0]


def test_display_names_people_write_are_still_addresses(tmp_path):
    for sender in ("Dr. Who <who@example.edu>", '"Seminar, Maths" <s@example.edu>', "Zdeborová <z@example.edu>",
                   "s@example.edu", "<s@example.edu>"):
        config = load_config(write_series(tmp_path, {}, config=BASE_CONFIG.replace(FROM, f"from = '{sender}'")))
        assert config.mail.sender.addr_spec in ("who@example.edu", "s@example.edu", "z@example.edu")


def test_the_default_domain_is_the_from_address_domain_as_a_header_reads_it(tmp_path):
    config = BASE_CONFIG.replace(DOMAIN + "\n", "")
    assert load_config(write_series(tmp_path, {}, config=config)).series.domain == "example.edu"


@pytest.mark.parametrize("url", ["https://example.edu/mad/\\n", "https://example.edu/\\u2028x", "https://e.edu/\\u0000"])
def test_a_url_with_a_line_break_or_control_character_is_refused(tmp_path, url):
    found = problems_with(tmp_path, 'url = "https://example.edu/mad/"', f'url = "{url}"')
    assert len(found) == 1 and found[0].startswith('announcer.toml:5: "url": ') and "on one line" in found[0]


@pytest.mark.parametrize("url", ["https:example.edu/mad", "http:/x", "ftp://example.edu/", "javascript:alert(1)"])
def test_a_series_url_follows_the_same_rule_as_a_talks_links(tmp_path, url):
    # One rule for links (sources/values.LINK): "https://..." or "mailto:...", in a talk or the config.
    found = problems_with(tmp_path, 'url = "https://example.edu/mad/"', f'url = "{url}"')
    assert len(found) == 1 and found[0].startswith('announcer.toml:5: "url": ') and "http(s) or mailto" in found[0]
    config = BASE_CONFIG.replace('url = "https://example.edu/mad/"', 'url = "mailto:mad@example.edu"')
    assert load_config(write_series(tmp_path, {}, config=config)).series.url == "mailto:mad@example.edu"


def test_the_series_name_and_location_refuse_control_characters_and_lengths(tmp_path):
    found = problems_with(tmp_path, 'name = "MaD Seminar"', 'name = "Series\\u2028Bcc: e@x.com"')
    assert found == ['announcer.toml:2: "name" holds the line separator U+2028: remove it']
    found = problems_with(tmp_path, 'location = "Auditorium Hall 150"', 'location = "Hall\\u0085150"')
    assert found == ['announcer.toml:4: "location" holds the control character U+0085: remove it']
    found = problems_with(tmp_path, 'name = "MaD Seminar"', f'name = "{"x" * 2400}"')
    assert found == ['announcer.toml:2: "name" is 2400 characters long: at most 300']


def test_before_0s_is_refused(tmp_path):
    found = problems_with(tmp_path, 'before = "1h"', 'before = "0s"')
    assert found == ["announcer.toml:19: \"before\" '0s': a message must go out before its talk "
                     "(at 0s it would always be missed)"]


@pytest.mark.parametrize("value", ['"99999999999999w"', '"999999999d"'])
def test_durations_out_of_range_are_refused(tmp_path, value):
    found = problems_with(tmp_path, 'before = "1h"', f"before = {value}")
    assert found == [f'announcer.toml:19: "before": {value.replace(chr(34), chr(39))} is longer than ten years']
    smtp = '[smtp]\nhost = "smtp.example.edu"\ntimeout = ' + value + "\n"
    assert any('"timeout"' in p and "longer than ten years" in p for p in problems_with(tmp_path, "", "", smtp))
    smtp = '[smtp]\nhost = "smtp.example.edu"\ntimeout = "2h"\n'
    assert any('"timeout" \'2h\' is over an hour' in p for p in problems_with(tmp_path, "", "", smtp))


@pytest.mark.parametrize("port", ["true", "0", "65536", "-1", '"587"', "587.0"])
def test_the_port_is_a_whole_number_from_1_to_65535(tmp_path, port):
    found = problems_with(tmp_path, "", "", f'[smtp]\nhost = "smtp.example.edu"\nport = {port}\n')
    assert len(found) == 1 and found[0].startswith('announcer.toml:26: "port" must be a whole number from 1 to 65535')


@pytest.mark.parametrize("size", ["-5", "0", "true", '"-5KB"', '"0KB"'])
def test_max_size_must_be_a_positive_size(tmp_path, size):
    found = problems_with(tmp_path, 'to = ["mad@lists.example.edu"]', f'to = ["mad@lists.example.edu"]\nmax_size = {size}')
    assert len(found) == 1 and found[0].startswith('announcer.toml:11: "max_size": ') and "is not a size" in found[0]


def test_a_username_needs_a_secure_connection(tmp_path):
    smtp = '[smtp]\nhost = "smtp.example.edu"\nsecurity = "none"\nusername = "mad"\npassword_env = "PW"\n'
    assert problems_with(tmp_path, "", "", smtp) == [
        'announcer.toml:27: "username" needs security "starttls" or "tls": '
        "a password is never sent over a connection in clear"]


def test_a_kind_too_long_for_a_file_name_is_refused(tmp_path):
    found = problems_with(tmp_path, 'kind = "reminder"', f'kind = "{"r" * 300}"')
    assert len(found) == 1 and found[0].startswith('announcer.toml:18: "kind" ') and "at most 40 characters" in found[0]


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_toml_nested_too_deep_is_one_line(tmp_path, depth):
    found = problems_with(tmp_path, "", "", "[x]\ny = " + "[" * depth + "]" * depth + "\n")
    assert found == ["announcer.toml:25: nested too deep for a configuration"]


def test_a_config_that_is_not_utf8_is_named_by_line(tmp_path):
    path = write_series(tmp_path, {})
    path.write_bytes(path.read_bytes().replace(b"MaD Seminar", b"MaD S\xe9minar", 1))
    assert problems_of(path) == [f"{path}:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"]


@pytest.mark.parametrize("old, new", [('maildir = "outbox"', "maildir = {}"),
                                      (DOMAIN, DOMAIN + "\ntalks_dir = {}"),
                                      ('maildir = "outbox"', 'maildir = "outbox"\n[state]\npath = {}')])
def test_a_path_with_a_name_too_long_for_a_file_system_is_refused(tmp_path, old, new):
    found = problems_with(tmp_path, old, new.format('"notes/' + "word " * 52 + '"'))
    key = new.split("\n")[-1].split(" = ")[0]
    assert len(found) == 1 and found[0].endswith(f'"{key}": a folder or file name in it is over 255 bytes'), found


def test_a_number_too_long_to_read_is_one_line(tmp_path):
    assert problems_with(tmp_path, 'name = "MaD Seminar"', f"name = {'9' * 5000}") == [
        "announcer.toml:2: a number too long to read"]


@pytest.mark.parametrize("old, new", [('at = "09:00"', "at = 0x" + "f" * 4000), ('name = "MaD Seminar"', "name = -0x" + "f" * 4000),
                                      ('to = ["mad@lists.example.edu"]', 'to = ["mad@lists.example.edu"]\nmax_size = -0x' + "f" * 4000)])
def test_a_number_too_large_to_print_is_one_line(tmp_path, old, new):
    found = problems_with(tmp_path, old, new)
    assert len(found) == 1 and "f" * 100 not in found[0] and "4300" not in found[0], found


@pytest.mark.parametrize("name", ["word word", "$PW", "PW\\u2028", "1PW", "PW=x"])
def test_a_password_variable_must_be_a_variable_name(tmp_path, name):
    found = problems_with(tmp_path, 'to = ["mad@lists.example.edu"]',
                          f'to = ["mad@lists.example.edu"]\napproved_password_env = "{name}"')
    assert len(found) == 1 and found[0].startswith('announcer.toml:11: "approved_password_env"'), found
