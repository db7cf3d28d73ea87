"""Property tests (Hypothesis): mutated talk and config files through the real CLI (SPEC 6).

Each example writes a series whose talk is due, mutates one file (types, dates, tags, nesting,
Unicode, control characters, encodings, sizes, aliases) and runs check, plan, preview --out and
send --due (to a Maildir, or to a real aiosmtpd server). Whatever the file holds:
- no traceback, and the exit code is 0 or 1;
- on exit 1, an error `path:line:` names the mutated file at a line inside it, and nothing is sent;
- what is sent or previewed carries only the expected headers, the configured sender and list,
  no header line over 998 bytes, and an invite of one event with only the expected properties.

CI runs a small, derandomized set (well under a minute); `ANNOUNCER_FUZZ=long pytest
tests/test_fuzz.py` runs a thousand random examples of each test, with larger inputs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from email import message_from_bytes, policy
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from announcer.cli import app

from conftest import write_config

LONG = os.environ.get("ANNOUNCER_FUZZ") == "long"
_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
settings.register_profile("announcer-ci", max_examples=25, derandomize=True, deadline=None, database=None,
                          suppress_health_check=_QUIET)      # the same examples every run: seconds
settings.register_profile("announcer-long", max_examples=1000, deadline=None, suppress_health_check=_QUIET)
FUZZ = settings.get_profile("announcer-long" if LONG else "announcer-ci")
BIG = 200_000 if LONG else 5_000  # the largest value or nesting an example writes

NOW = "2027-03-05T15:00:00+00:00"   # the base talk's announcement is due (7 days before, 09:00 New York)
SENDER = "seminar@example.org"
LIST = "seminar-list@example.org"
HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted", "mime-version", "content-type",
           "in-reply-to", "references", "reply-to", "approved"}
INVITE_PROPERTIES = {"BEGIN", "END", "VERSION", "PRODID", "METHOD", "UID", "SEQUENCE", "DTSTAMP", "DTSTART",
                     "DTEND", "SUMMARY", "LOCATION", "DESCRIPTION", "URL", "STATUS", "ORGANIZER"}
BASE_TALK = {
    "id": "deep-nets",
    "title": "Dynamical Isometry in Deep Neural Networks",
    "speaker": "{name: Jeffrey Pennington, affiliation: Google, url: 'https://example.edu/jp'}",
    "start": "2027-03-10 14:00",
    "duration": "1h30m",
    "timezone": "America/New_York",
    "location": "Auditorium Hall 150",
    "online_url": "https://zoom.example/j/123",
    "url": "https://example.edu/mad/deep-nets",
    "abstract": "|\n  In recent years, *many* models\n  have grown [deep](https://example.edu).\n",
    "notes": "Reception will follow.",
    "links": "{slides: 'https://example.edu/s.pdf', video: 'https://example.edu/v'}",
    "status": "confirmed",
}
runner = CliRunner()


# ---- strategies: YAML and TOML snippets an organiser (or an attacker) might write ----------

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
nasty_characters = st.sampled_from(["\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029",
                                    "\ud800", "\udfff", "\r", "\n", "\t", "\ufeff", "\u202e", "Bcc: x@evil.example"])
texts = st.one_of(any_text, st.builds(lambda a, b, c: a + b + c, any_text, nasty_characters, any_text),
                  st.integers(1, BIG).map(lambda n: "W" * n), st.integers(1, 60).map(lambda n: "word " * n))


def _date(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}"


dates = st.builds(_date, st.integers(0, 10_000), st.integers(0, 13), st.integers(0, 32))
times = st.builds(lambda h, m, s: f"{h:02d}:{m:02d}" + (f":{s:02d}" if s is not None else ""),
                  st.integers(0, 25), st.integers(0, 61), st.none() | st.integers(0, 61))
offsets = st.sampled_from(["", "Z", "+00:00", "-05:00", "+14:00", "+24:00", "-99:99", "+5"])
moments = st.one_of(dates, st.builds(lambda d, sep, t, z: f"{d}{sep}{t}{z}", dates, st.sampled_from([" ", "T", "t"]),
                                     times, offsets))
numbers = st.one_of(st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.integers(1, 5000).map(lambda n: "9" * n), st.integers(1, 4000).map(lambda n: "0x" + "f" * n))
durations = st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 10 ** 16), st.sampled_from("wdhms"))
tags = st.builds(lambda tag, value: f"{tag} {value}",
                 st.sampled_from(["!!timestamp", "!!bool", "!!int", "!!float", "!!str", "!!null", "!!binary",
                                  "!!set", "!!omap", "!!pairs", "!!python/object:os.system", "!custom", "!!map",
                                  "!!seq", "!!merge"]),
                 st.one_of(moments, numbers.map(str), st.sampled_from(["maybe", "yes", "~", "[a, b]", "{a: 1}",
                                                                       "aGVsbG8=", "''"])))


def _nested(depth: int, opening: str, closing: str) -> str:
    return opening * depth + "1" + closing * depth


nesting = st.builds(lambda depth, pair: _nested(depth, *pair), st.integers(1, BIG),
                    st.sampled_from([("[", "]"), ("{a: ", "}"), ("[{a: ", "}]")]))
yaml_values = st.one_of(
    texts.map(json.dumps),                                        # any code point, as a JSON/YAML escape
    texts.map(lambda text: json.dumps(text, ensure_ascii=False)),  # raw, separators and all
    texts.filter(lambda text: text.strip() and "\n" not in text),  # plain, which may not even be YAML
    moments, numbers.map(str), durations, tags, nesting,
    st.sampled_from(["", "~", "null", "true", "no", "[]", "{}", "*missing", "&a [*a]", "[&b x, *b, *b]",
                     "{<<: {name: X}}", "|\n  block\n", ">-\n  folded\n", "'single ''quoted'''",
                     "[{title: &t A, start: 2027-03-10 14:00}, {title: *t, start: 2027-03-11 14:00}]",
                     "[&s {start: 2027-03-10 14:00}, {<<: *s, id: two}]"]),
)


def talk_file(changes: dict[str, str]) -> str:
    """The base talk with some values replaced (a value of None removes its key)."""
    fields = {**BASE_TALK, **changes}
    return "".join(f"{key}: {value}\n" if not value.startswith("|") else f"{key}: {value}"
                   for key, value in fields.items() if value is not None)


talk_keys = st.sampled_from(sorted(BASE_TALK) + ["end", "speaker", "titel", "talks"])
talk_changes = st.dictionaries(talk_keys, yaml_values | st.none(), max_size=3)


def encoded(text: str, how: str) -> bytes:
    """The file's bytes in one of the encodings organisers' editors produce (or worse)."""
    if how == "utf-8":
        return text.encode("utf-8", "surrogatepass")
    if how == "utf-8-sig":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    return text.encode(how, "replace")


encodings = st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "latin-1", "cp1252"])
byte_edits = st.one_of(st.none(), st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=8)),
                       st.tuples(st.floats(0, 1), st.just(b"")))


def edited(data: bytes, edit) -> bytes:
    """Bytes inserted at a place (or the file cut there)."""
    if edit is None:
        return data
    where, inserted = edit
    cut = int(len(data) * where)
    return data[:cut] + inserted + data[cut:] if inserted else data[:cut]


# ---- running the CLI and checking what came out ---------------------------------------------

class Series:
    """A fresh series folder for one example: config, one talk file, Maildir outbox."""

    def __init__(self, server=None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fuzz-"))
        self.config = write_config(self.root, server, mail={"from": f"Test Seminar <{SENDER}>", "to": [LIST]})
        self.talk = self.root / "talks" / "talk.yaml"

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def run(self, *args: str):
        result = runner.invoke(app, ["--config", str(self.config), *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output, result.output
        assert result.exit_code in (0, 1), (result.exit_code, result.output)
        return result

    def sent(self) -> list[bytes]:
        new = self.root / "outbox" / "new"
        return [path.read_bytes() for path in sorted(new.iterdir())] if new.is_dir() else []


def lines_in(data: bytes) -> int:
    """How many lines the file has, counting whatever a YAML or TOML reader takes for a line break."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.count(b"\n") + 1
    return len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text)) + 1


def assert_names_a_line_of(result, path: Path, data: bytes) -> None:
    """On exit 1, an error names the file at a line inside it; every error line is one line. A
    password written in a [state] url is never shown, whatever the exit."""
    assert "secret-pw" not in result.stdout + result.stderr
    if result.exit_code != 1:
        return
    # At the start of a line, or after "TALK KIND: " where preview names the message it could not render.
    where = rf"(?:^|: ){re.escape(str(path))}:(\d+): (?!warning)"
    places = [int(m[1]) for m in re.finditer(where, result.stderr, re.M)]
    if re.search(rf"^{re.escape(str(path))}: \S+ names \$\S+, which is not set$", result.stderr, re.M):
        return  # the config names a variable for a password: the environment's problem, not a line's
    if re.fullmatch(r"postgres(ql)?://\S+: cannot open the ledger: [^\n]+\n", result.stderr):
        return  # a valid [state] url whose server is out of reach: the same
    assert places, result.stderr
    assert all(1 <= line <= lines_in(data) + 1 for line in places), (places, lines_in(data), result.stderr)


def assert_nothing_injected(raw: bytes) -> None:
    """The message has the expected headers, sender, list and invite, and no line over 998 bytes."""
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)  # a Maildir file or the server's copy may end lines in LF
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")), "a line over 998 bytes"
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    names = {line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and line[0] not in " \t"}
    assert names <= HEADERS, names - HEADERS
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg.get("Approved", "********") == "********"  # previews mask it; the fuzz sets no password
    assert [a.addr_spec for a in msg["From"].addresses] == [SENDER]
    assert [a.addr_spec for a in msg["To"].addresses] == [LIST]
    assert not msg["Subject"].defects and "\n" not in str(msg["Subject"])
    invites = [part for part in msg.walk() if part.get_content_type() == "text/calendar"]
    assert len(invites) == 2
    for part in invites:
        ics = part.get_payload(decode=True).decode("utf-8")
        assert "\r" not in ics.replace("\r\n", "") and "\n" not in ics.replace("\r\n", "")
        content_lines = ics.replace("\r\n ", "").split("\r\n")
        names = {re.split("[:;]", line, maxsplit=1)[0] for line in content_lines if line}
        assert names <= INVITE_PROPERTIES, names - INVITE_PROPERTIES
        assert content_lines.count("BEGIN:VEVENT") == 1
        organizers = [line for line in content_lines if line.startswith("ORGANIZER")]
        assert len(organizers) == 1 and organizers[0].endswith(f":mailto:{SENDER}"), organizers


def run_every_command(series: Series, path: Path, data: bytes) -> None:
    """check, plan, preview --out and send --due on the series as written; the properties above."""
    codes = set()
    for command in (["check", "--now", NOW], ["plan", "--now", NOW]):
        result = series.run(*command)
        assert_names_a_line_of(result, path, data)
        codes.add(result.exit_code)
    out = series.root / "preview"
    result = series.run("preview", "--out", str(out), "--now", NOW)
    assert_names_a_line_of(result, path, data)
    for eml in sorted(out.glob("*.eml")) if result.exit_code == 0 else []:
        assert_nothing_injected(eml.read_bytes())
    result = series.run("send", "--due", "--now", NOW)
    assert_names_a_line_of(result, path, data)
    if result.exit_code == 1:
        assert series.sent() == [], "sent on exit 1"
    for raw in series.sent():
        assert_nothing_injected(raw)
    assert len(codes) == 1, "check and plan disagree on whether the input is bad"


# ---- the properties -------------------------------------------------------------------------

@FUZZ
@given(changes=talk_changes, encoding=encodings, edit=byte_edits)
@example(changes={}, encoding="utf-8", edit=None)                                    # sends the announcement
@example(changes={"start": "2027-02-30"}, encoding="utf-8", edit=None)
@example(changes={"title": json.dumps("Sur\ud800")}, encoding="utf-8", edit=None)
@example(changes={"links": "[" * 1000 + "]" * 1000}, encoding="utf-8", edit=None)
@example(changes={"title": json.dumps("Deep\x00nets")}, encoding="utf-8", edit=None)
@example(changes={}, encoding="utf-16-le", edit=None)
def test_a_mutated_talk_file_is_sent_whole_or_refused_at_a_line(changes, encoding, edit):
    series = Series()
    try:
        data = edited(encoded(talk_file(changes), encoding), edit)
        series.talk.write_bytes(data)
        run_every_command(series, series.talk, data)
        if not changes and encoding == "utf-8" and edit is None:
            assert len(series.sent()) == 1
    finally:
        series.close()


CONFIG_KEYS = [("series", "name"), ("series", "timezone"), ("series", "location"), ("series", "duration"),
               ("series", "url"), ("series", "subscribe_url"), ("series", "domain"), ("mail", "from"),
               ("mail", "to"), ("mail", "reply_to"), ("mail", "max_size"), ("mail", "approved_password_env"),
               ("delivery", "transport"), ("delivery", "maildir"), ("messages", "before"), ("messages", "at"),
               ("messages", "kind"), ("state", "path"), ("state", "url"), ("state", "series"),
               ("state", "password_env")]
toml_values = st.one_of(
    texts.map(json.dumps), texts.map(lambda text: json.dumps(text, ensure_ascii=False)),
    numbers.map(str), st.booleans().map(lambda b: "true" if b else "false"), durations.map(json.dumps),
    moments, st.integers(1, BIG).map(lambda n: "[" * n + "]" * n), st.integers(1, BIG).map(lambda n: "{a=" * n + "1" + "}" * n),
    st.lists(texts.map(json.dumps), max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
    st.sampled_from(['"Evil Bcc: x@evil.example <seminar@example.org>"', '"a@example.org, x@evil.example"',
                     '"x.example> <evil@a.b"', '"0s"', '"https://example.edu/\\n"', '"""multi\nline"""',
                     "'literal'", "inf", "nan", "-0", '"\\ud800"', '"99999999999999w"', '"-5"',
                     '"postgresql://announcer@127.0.0.1:1/announcer"', '"postgresql://u:secret-pw@127.0.0.1:1/x"',
                     '"postgres://127.0.0.1/x?password=secret-pw"', '"postgresql://[::1"']),
)


def mutated_config(text: str, changes: list[tuple[tuple[str, str], str]]) -> str:
    """The config with the value of each (table, key) replaced (added to its table if missing)."""
    for (table, key), value in changes:
        pattern = re.compile(rf"(^\[{table}\][^\[]*?^){key} = [^\n]*$" if table != "messages"
                             else rf"(^\[\[messages\]\][^\[]*?^){key} = [^\n]*$", re.M | re.S)
        if pattern.search(text):
            text = pattern.sub(lambda m: f"{m[1]}{key} = {value}", text, count=1)
        else:
            header = "[[messages]]" if table == "messages" else f"[{table}]"
            text = text.replace(header, f"{header}\n{key} = {value}", 1) if header in text else \
                text + f"\n{header}\n{key} = {value}\n"
    return text


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(CONFIG_KEYS), toml_values), min_size=1, max_size=2),
       encoding=encodings, edit=byte_edits)
@example(changes=[(("series", "domain"), '"x.example> <evil@a.b"')], encoding="utf-8", edit=None)
@example(changes=[(("mail", "from"), '"Evil Bcc: x@evil.example <seminar@example.org>"')], encoding="utf-8",
         edit=None)
@example(changes=[(("series", "name"), json.dumps("Series\u2028Bcc: e@x.com", ensure_ascii=False))],
         encoding="utf-8", edit=None)
@example(changes=[(("state", "url"), '"postgresql://announcer@127.0.0.1:1/announcer"'), (("state", "series"), '"s"')],
         encoding="utf-8", edit=None)
@example(changes=[(("state", "url"), '"postgresql://u:secret-pw@127.0.0.1:1/x"')], encoding="utf-8", edit=None)
def test_a_mutated_config_is_used_whole_or_refused_at_a_line(changes, encoding, edit):
    series = Series()
    try:
        series.talk.write_text(talk_file({}), encoding="utf-8")
        data = edited(encoded(mutated_config(series.config.read_text(encoding="utf-8"), changes), encoding), edit)
        series.config.write_bytes(data)
        run_every_command(series, series.config, data)
    finally:
        series.close()


@FUZZ
@given(changes=talk_changes)
@example(changes={"title": json.dumps("Deep\r\nBcc: x@evil.example")})
@example(changes={"speaker": json.dumps("Ada\u2028Bcc: x@evil.example", ensure_ascii=False)})
def test_a_mutated_talk_sent_over_smtp_reaches_only_the_list(changes, smtp_plain):
    smtp_plain.reset()
    series = Series(smtp_plain)
    try:
        data = talk_file(changes).encode("utf-8", "surrogatepass")
        series.talk.write_bytes(data)
        result = series.run("send", "--due", "--now", NOW)
        assert_names_a_line_of(result, series.talk, data)
        received = smtp_plain.messages
        if result.exit_code == 1:
            assert received == [], "sent on exit 1"
        for message in received:
            assert message.mail_from == SENDER and message.rcpt_tos == (LIST,)
            assert_nothing_injected(message.content)
    finally:
        series.close()
