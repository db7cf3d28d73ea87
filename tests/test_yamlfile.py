"""Reading a talk file never raises: every bad value is one problem with its file and line."""

from __future__ import annotations

import pytest

from announcer.sources.yamlfile import LineDict, read_yaml

MAX_DEPTH = 20  # yamlfile.MAX_DEPTH, written out so that this file runs against older code too


def problems(tmp_path, content: str | bytes) -> list[str]:
    path = tmp_path / "talk.yaml"
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    document, found = read_yaml(path)
    assert found or document is not None
    return [str(p).replace(f"{path}:", "talk.yaml:") for p in found]


@pytest.mark.parametrize("line, message", [
    ("start: 2027-02-30", "'2027-02-30' is not a date or time that exists (day is out of range for month)"),
    ("end: 2027-02-30", "'2027-02-30' is not a date or time that exists (day is out of range for month)"),
    ("start: 0000-10-06 14:00:00", "'0000-10-06 14:00:00' is not a date or time that exists (year 0 is out of range)"),
    ("start: 2027-02-21 24:00:00", "'2027-02-21 24:00:00' is not a date or time that exists (hour must be in 0..23)"),
    ("start: 2026-02-30T14:00:00-05:00", "'2026-02-30T14:00:00-05:00' is not a date or time that exists "
                                         "(day is out of range for month)"),
    ("start: 2027-02-21T14:00:00+25:00", "'2027-02-21T14:00:00+25:00' is not a date or time that exists"),
    ("notes: 2027-02-29", "'2027-02-29' is not a date or time that exists (day is out of range for month)"),
    ("start: !!timestamp 2027-13-01", "'2027-13-01' is not a date or time that exists (month must be in 1..12)"),
    ("start: !!timestamp next tuesday", "'next tuesday' is not a date or time that exists"),
])
def test_a_date_or_time_that_does_not_exist_is_one_line_with_its_line(tmp_path, line, message):
    found = problems(tmp_path, f"title: T\n{line}\nlocation: Room 1\n")
    assert len(found) == 1 and found[0].startswith(f"talk.yaml:2: {message}"), found
    assert "write e.g. 2027-02-21 14:00" in found[0]


@pytest.mark.parametrize("value, tag", [("!!bool maybe", "!!bool"), ("!!int 0x", "!!int"),
                                        ("!!float abc", "!!float"), ("!!int 12abc", "!!int")])
def test_a_tag_with_an_impossible_value(tmp_path, value, tag):
    assert problems(tmp_path, f"title: T\nstatus: {value}\n") == [
        f"talk.yaml:2: '{value.split()[1]}' is not a possible {tag} value"]


def test_unknown_and_python_tags_are_refused_by_line(tmp_path):
    found = problems(tmp_path, "title: T\nnotes: !!python/object:os.system [ls]\n")
    assert len(found) == 1 and found[0].startswith("talk.yaml:2: not valid YAML: could not determine a constructor")


@pytest.mark.parametrize("escape, code", [("\\0", "0000"), ("\\v", "000B"), ("\\f", "000C"), ("\\e", "001B"),
                                          ("\\r", "000D"), ("\\x7f", "007F"), ("\\x85", "0085"), ("\\N", "0085"),
                                          ("\\u009b", "009B"), ("\\L", "2028"), ("\\u2029", "2029")])
def test_control_characters_and_line_separators_in_any_text_are_refused(tmp_path, escape, code):
    found = problems(tmp_path, f'title: T\nspeaker:\n  name: "Ada{escape}Bcc: x@evil.example"\n')
    assert len(found) == 1
    what = {"2028": "line separator", "2029": "paragraph separator"}.get(code, "control character")
    assert found[0].startswith(f"talk.yaml:3: the {what} U+{code} in the text 'Ada"), found
    assert found[0].endswith(": remove it") and "\n" not in found[0]


def test_a_raw_line_separator_is_refused_and_a_literal_block_names_the_line_it_is_on(tmp_path):
    found = problems(tmp_path, "title: T\nabstract: |\n  one\n  two\u2028  three\n  four\n")
    assert found == ["talk.yaml:4: the line separator U+2028 in the text 'one\\ntwo\\u2028three\\nfour\\n': remove it"]
    found = problems(tmp_path, "title: \"Series\u2029 Bcc: x@evil.example\"\n")
    assert found == ["talk.yaml:1: the paragraph separator U+2029 in the text 'Series\\u2029Bcc: x@evil.example': remove it"]
    assert problems(tmp_path, "title: T\nabstract: |\n  one\n\ttwo\n") != []  # a tab indent: YAML's own error
    assert problems(tmp_path, "title: T\nabstract: \"one\\ttwo\\nthree\"\n") == []  # tab and line feed are text


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\U0000dc00"])
def test_a_lone_surrogate_is_refused(tmp_path, escape):
    found = problems(tmp_path, f'title: "Sur{escape}"\nstart: 2027-02-21 14:00\n')
    assert len(found) == 1 and found[0].startswith("talk.yaml:1: a lone surrogate U+D"), found


def test_keys_are_checked_too(tmp_path):
    found = problems(tmp_path, 'title: T\n"ti\\0tle": x\n')
    assert found == ["talk.yaml:2: the control character U+0000 in the text 'ti\\x00tle': remove it"]


@pytest.mark.parametrize("depth", [MAX_DEPTH, 1000, 100_000])
@pytest.mark.parametrize("opening, closing", [("{a: ", "}"), ("[", "]"), ("[{a: ", "}]")])
def test_nesting_deeper_than_a_talk_needs_is_one_problem(tmp_path, depth, opening, closing):
    found = problems(tmp_path, "title: T\nlinks: " + opening * depth + "1" + closing * depth + "\n")
    assert len(found) == 1 and found[0].startswith("talk.yaml:2: "), found
    assert "nested more than 20 deep" in found[0] or "exceeded maximum nesting depth" in found[0]


def test_block_nesting_is_named_at_the_line_where_it_goes_too_deep(tmp_path):
    def nested(depth: int) -> str:
        return "".join(" " * i + "- \n" for i in range(depth)) + " " * depth + "b\n"

    assert problems(tmp_path, nested(30)) == [f"talk.yaml:{MAX_DEPTH + 1}: nested more than 20 deep: a talk needs far less"]
    assert problems(tmp_path, nested(MAX_DEPTH)) == []


def test_recursive_aliases_are_read_without_a_traceback(tmp_path):
    assert problems(tmp_path, "title: T\nspeaker: &a [*a]\n") == [
        "talk.yaml:2: not valid YAML: found unconstructable recursive node"]
    assert problems(tmp_path, "a: &a {<<: *a}\n") == []


@pytest.mark.parametrize("content, line, why", [
    (b"title: T\nspeaker: A\x00B\n", 2, "a NUL byte: a binary file"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00", 1, "a NUL byte: a binary file"),
    ("title: T\nstart: 2027-02-21 14:00\n".encode("utf-16-le"), 1, "UTF-16 text"),
    ("title: T\nstart: 2027-02-21 14:00\n".encode("utf-16-be"), 1, "UTF-16 text"),
    ("title: T\nstart: 2027-02-21 14:00\n".encode("utf-16"), 1, "UTF-16 text"),   # with a BOM
    (b"title: T\nabstract: \xff\xfe\x80\n", 2, "byte 0xff"),
])
def test_binary_and_utf16_files_are_named_by_line_not_byte_position(tmp_path, content, line, why):
    found = problems(tmp_path, content)
    assert len(found) == 1 and found[0].startswith(f"talk.yaml:{line}: not UTF-8 text ({why}"), found
    assert "position" not in found[0]


def test_a_control_character_yaml_itself_refuses_is_named_by_line(tmp_path):
    found = problems(tmp_path, "title: T\nlocation: Room\x0b1\n")
    assert found == ["talk.yaml:2: the control character U+000B cannot be in a YAML file"]


def test_a_file_too_large_for_a_talk_is_refused_unread(tmp_path):
    found = problems(tmp_path, "title: T\nabstract: " + "x" * (2 * 1024 * 1024) + "\n")
    assert found == ["talk.yaml:1: larger than 1024 KB: not a talk file"]


def test_every_value_that_cannot_be_is_reported_in_one_run(tmp_path):
    found = problems(tmp_path, 'title: "Deep\\Lnets"\nspeaker: Ada\nstart: 2027-02-30 14:00:00\nnotes: 2027-02-29\n'
                               "links:\n  slides: !!bool maybe\n")
    assert [line.split(": ", 1)[0] for line in found] == ["talk.yaml:1", "talk.yaml:3", "talk.yaml:4", "talk.yaml:6"]


@pytest.mark.parametrize("value", ["!!map 0", "!!seq 0", "!!set 0", "!!omap 0", "!!pairs 0", "!!map [a]"])
def test_a_collection_tag_on_a_value_of_another_kind_is_refused_at_its_line(tmp_path, value):
    found = problems(tmp_path, f"title: T\nabstract: {value}\n")
    assert len(found) == 1 and found[0].startswith("talk.yaml:2: "), found


def read_document(tmp_path, text: str | bytes):
    path = tmp_path / "talk.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    document, problems = read_yaml(path)
    return document, [(p.line, p.message) for p in problems]


def test_every_mapping_knows_its_own_line_and_the_line_of_each_key(tmp_path):
    document, problems = read_document(tmp_path, "# a talk\ntitle: T\nspeaker:\n  name: Ada\n  bio: |\n    Long.\nstart: x\n")
    assert problems == []
    assert isinstance(document, LineDict) and document.line == 2
    assert document.lines == {"title": 2, "speaker": 3, "start": 7}
    assert document["speaker"].line == 4 and document["speaker"].lines == {"name": 4, "bio": 5}


def test_a_key_written_twice_is_a_problem_at_the_second(tmp_path):
    document, problems = read_document(tmp_path, "title: A\nnotes: x\ntitle: B\n")
    assert document is None and len(problems) == 1
    assert problems[0][0] == 3 and 'the key "title" appears twice' in problems[0][1]
