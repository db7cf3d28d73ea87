from datetime import datetime, timezone
from pathlib import Path

import pytest

from announcer.sources.config import load_config
from announcer.sources.talks import load_talk_file, load_talks

from series_files import PENNINGTON, write_series

ROOT = Path(__file__).resolve().parent.parent


def load(tmp_path, files: dict[str, str]):
    config = load_config(write_series(tmp_path, files))
    return load_talks(config.series)


def only_problem(tmp_path, text: str, name: str = "talk.yaml") -> str:
    talkset = load(tmp_path, {name: text})
    assert len(talkset.problems) == 1, talkset.problems
    return str(talkset.problems[0])


def test_every_seed_example_loads():
    config = load_config(ROOT / "config.example.toml")
    talkset = load_talks(config.series)
    assert talkset.problems == []
    ids = {t.id for t in talkset.talks}
    assert {"2027-02-21-pennington", "2027-02-28-el-alaoui", "2027-11-09-mahoney", "2027-03-16-pennington-rmt",
            "2027-09-07-mukherjee"} <= ids
    assert {f"2027-04-0{d}-hanin-{n}" for n, d in enumerate(range(5, 10), start=1)} <= ids
    by_id = {t.id: t for t in talkset.talks}
    assert by_id["2027-02-28-el-alaoui"].is_tba
    course = [t for t in talkset.talks if "hanin" in t.id]
    assert [t.location for t in course] == ["Eck 206", "Eck 202", "Eck 202", "Eck 203", "Eck 202"]
    assert all(t.speakers[0].name == "Boris Hanin" for t in course)
    assert course[3].start.strftime("%H:%M") == "15:30"
    assert dict(by_id["2027-09-07-mukherjee"].links)["video"].startswith("https://www.youtube.com/")
    assert all(t.start > datetime(2026, 11, 22, tzinfo=timezone.utc) for t in talkset.talks)


def test_single_talk_defaults(tmp_path):
    talkset = load(tmp_path, {"2027-02-21-pennington.yaml": PENNINGTON})
    talk = talkset.talks[0]
    assert talk.id == "2027-02-21-pennington"
    assert talk.location == "Auditorium Hall 150"
    assert talk.status == "confirmed"
    assert talk.start.isoformat() == "2027-02-21T14:00:00-05:00"
    assert talk.speaker_line == "Jeffrey Pennington (Google)"


def test_course_file_shares_defaults_and_numbers_ids(tmp_path):
    talkset = load(tmp_path, {"course.yaml": """\
        speaker: Boris Hanin
        duration: 1h30m
        location: Eck 202
        talks:
          - title: One
            start: 2027-04-05 15:00
          - title: Two
            start: 2027-04-06 15:00
            location: Eck 203
        """})
    assert [t.id for t in talkset.talks] == ["course-1", "course-2"]
    assert [t.location for t in talkset.talks] == ["Eck 202", "Eck 203"]
    assert talkset.talks[0].end.strftime("%H:%M") == "16:30"


@pytest.mark.parametrize("written", ["location: online", "location: ONLINE", "location: Online ",
                                     "location: null", "location:", 'location: ""'])
def test_an_online_only_talk_has_no_room_not_even_the_series_default(tmp_path, written):
    talkset = load(tmp_path, {"talk.yaml": PENNINGTON + written + "\nonline_url: https://zoom.example/j/1\n"})
    assert talkset.problems == []
    [talk] = talkset.talks
    assert talk.location is None and talk.online_only
    assert talk.where == "https://zoom.example/j/1"


def test_a_course_session_can_be_online_while_the_others_keep_the_room(tmp_path):
    talkset = load(tmp_path, {"course.yaml": """\
        speaker: Boris Hanin
        location: Eck 202
        talks:
          - {title: One, start: 2027-04-05 15:00}
          - {title: Two, start: 2027-04-06 15:00, location: null}
        """})
    assert [(t.location, t.online_only, t.where) for t in talkset.talks] == [
        ("Eck 202", False, "Eck 202"), (None, True, "Online")]


def test_a_course_keeps_its_notes_beside_each_sessions_own(tmp_path):
    talkset = load(tmp_path, {"course.yaml": """\
        speaker: Boris Hanin
        notes: A special lecture course, every day this week.
        talks:
          - {title: One, start: 2027-04-05 15:00, notes: In lieu of the regular dynamics seminar.}
          - {title: Two, start: 2027-04-06 15:00}
        """})
    assert [t.notes for t in talkset.talks] == [
        "In lieu of the regular dynamics seminar.\n\nA special lecture course, every day this week.",
        "A special lecture course, every day this week."]


def test_a_bad_course_note_is_reported_at_its_own_line(tmp_path):
    problem = only_problem(tmp_path, "notes: [a, list]\ntalks:\n  - {title: One, start: 2027-04-05 15:00, notes: x}\n")
    assert problem.endswith('talk.yaml:1: "notes" must be text; put it in quotes')


def test_speaker_forms(tmp_path):
    talkset = load(tmp_path, {"a.yaml": """\
        title: Panel
        speaker:
          - Lenka Zdeborová
          - name: Florent Krzakala
            affiliation: EPFL
        start: 2027-05-04 14:00
        """})
    assert talkset.talks[0].speaker_line == "Lenka Zdeborová, Florent Krzakala (EPFL)"


def test_offset_and_zone(tmp_path):
    talkset = load(tmp_path, {
        "zurich.yaml": "title: Z\nstart: 2027-03-30 14:00\ntimezone: Europe/Zurich\n",
        "offset.yaml": "title: O\nstart: 2027-03-30T14:00:00+02:00\n"})
    by_id = {t.id: t for t in talkset.talks}
    assert by_id["zurich"].start.astimezone(timezone.utc) == datetime(2027, 3, 30, 12, 0, tzinfo=timezone.utc)
    assert by_id["offset"].start.astimezone(timezone.utc) == datetime(2027, 3, 30, 12, 0, tzinfo=timezone.utc)
    assert by_id["offset"].start.tzinfo.key == "America/New_York"


def test_malformed_yaml(tmp_path):
    problem = only_problem(tmp_path, "title: [unclosed\nstart: 2027-02-21 14:00\n")
    assert problem.startswith(f"{tmp_path}/talks/talk.yaml:2: not valid YAML")


def test_bare_time_is_a_number(tmp_path):
    problem = only_problem(tmp_path, "title: T\nstart: 14:00\n")
    assert problem == (f'{tmp_path}/talks/talk.yaml:2: "start: 840" was read as a number (YAML turns a bare '
                       "14:00 into 840): write the date and time, e.g. start: 2027-02-21 14:00")


def test_time_without_date(tmp_path):
    problem = only_problem(tmp_path, 'title: T\nstart: "14:00"\n')
    assert problem == (f'{tmp_path}/talks/talk.yaml:2: "start: 14:00" is a time without a date: '
                       "write e.g. start: 2027-02-21 14:00")


def test_date_without_time(tmp_path):
    assert "has a date but no time" in only_problem(tmp_path, "title: T\nstart: 2027-02-21\n")


def test_end_before_start(tmp_path):
    problem = only_problem(tmp_path, "title: T\nstart: 2027-02-21 14:00\nend: 2027-02-21 13:00\n")
    assert problem == f"{tmp_path}/talks/talk.yaml:3: end 2027-02-21 13:00 is not after start 2027-02-21 14:00"


def test_unknown_zone(tmp_path):
    problem = only_problem(tmp_path, "title: T\nstart: 2027-02-21 14:00\ntimezone: Mars/Olympus\n")
    assert problem.startswith(f"{tmp_path}/talks/talk.yaml:3: unknown timezone 'Mars/Olympus'")


def test_unknown_key_with_hint(tmp_path):
    problem = only_problem(tmp_path, "title: T\nstart: 2027-02-21 14:00\nabstarct: x\n")
    assert problem == f'{tmp_path}/talks/talk.yaml:3: unknown key "abstarct" (did you mean "abstract"?)'


@pytest.mark.parametrize("line, hint", [
    ("room: Eck 206", 'unknown key "room" (did you mean "location"?)'),
    ("Venue: Eck 206", 'unknown key "Venue" (did you mean "location"?)'),
    ("zoom: https://zoom.example/j/1", 'unknown key "zoom" (did you mean "online_url"?)'),
    ("video: https://youtu.be/x", 'unknown key "video" (did you mean links: {video: ...}?)'),
    ("slides: https://example.edu/s.pdf", 'unknown key "slides" (did you mean links: {slides: ...}?)'),
    ("recording: https://youtu.be/x", 'unknown key "recording" (did you mean links: {recording: ...}?)'),
    ("bio: Professor.", 'unknown key "bio" (did you mean speaker: {bio: ...}?)'),
    ("speakers: [A, B]", 'unknown key "speakers" (did you mean "speaker"?)'),
    ("date: 2027-02-21", 'unknown key "date" (did you mean "start"?)'),
])
def test_unknown_keys_that_people_write_point_to_the_right_one(tmp_path, line, hint):
    problem = only_problem(tmp_path, f"title: T\nstart: 2027-02-21 14:00\n{line}\n")
    assert problem == f"{tmp_path}/talks/talk.yaml:3: {hint}"


@pytest.mark.parametrize("key, hint", [("institution", '"affiliation"'), ("homepage", '"url"'),
                                       ("website", '"url"')])
def test_unknown_speaker_keys_that_people_write_point_to_the_right_one(tmp_path, key, hint):
    problem = only_problem(tmp_path, f"title: T\nstart: 2027-02-21 14:00\nspeaker: {{name: A, {key}: x}}\n")
    assert problem == f'{tmp_path}/talks/talk.yaml:3: unknown speaker key "{key}" (did you mean {hint}?)'


def test_status_hint(tmp_path):
    problem = only_problem(tmp_path, "title: T\nstart: 2027-02-21 14:00\nstatus: canceled\n")
    assert 'did you mean "cancelled"?' in problem


def test_duplicate_ids_name_both_files(tmp_path):
    talkset = load(tmp_path, {"a.yaml": "id: same\ntitle: A\nstart: 2027-02-21 14:00\n",
                              "b.yaml": "title: B\n\nid: same\nstart: 2027-02-22 14:00\n"})
    assert [str(p) for p in talkset.problems] == [
        f'{tmp_path}/talks/b.yaml:1: talk id "same" is also used at {tmp_path}/talks/a.yaml:1']


def test_not_utf8(tmp_path):
    config = load_config(write_series(tmp_path, {}))
    path = tmp_path / "talks" / "latin1.yaml"
    path.write_bytes("title: T\nspeaker: Zdeborov\xe1\n".encode("latin-1"))
    result = load_talk_file(path, config.series)
    assert [str(p) for p in result.problems] == [
        f"{path}:2: not UTF-8 text (byte 0xe1); save the file as UTF-8"]


def test_spring_forward_gap(tmp_path):
    problem = only_problem(tmp_path, "title: T\nstart: 2027-03-14 02:30\n")
    assert problem == (f"{tmp_path}/talks/talk.yaml:2: 2027-03-14 02:30 does not exist in America/New_York "
                       "(the clocks skip it when daylight saving starts)")


def test_autumn_fold_is_a_warning(tmp_path):
    talkset = load(tmp_path, {"talk.yaml": "title: T\nstart: 2027-11-07 01:30\n"})
    assert talkset.talks and talkset.errors == []
    assert "happens twice in America/New_York" in str(talkset.problems[0])
    assert talkset.problems[0].warning


def test_empty_file_is_a_warning(tmp_path):
    talkset = load(tmp_path, {"draft.yaml": "# to be written\n"})
    assert talkset.errors == [] and talkset.talks == []
    assert str(talkset.problems[0]) == f"{tmp_path}/talks/draft.yaml:1: warning: empty file: no talk yet"


@pytest.mark.parametrize("field", ["title", "location"])
def test_header_fields_refuse_line_breaks(tmp_path, field):
    text = f'{field}: "Deep nets\\nBcc: victim@example.com"\nstart: 2027-02-21 14:00\n'
    if field == "location":
        text = "title: T\n" + text
    problem = only_problem(tmp_path, text)
    assert f'"{field}" must be on one line' in problem


def test_links_must_be_http_or_mailto(tmp_path):
    problem = only_problem(tmp_path, "title: T\nstart: 2027-02-21 14:00\nlinks:\n  slides: javascript:alert(1)\n")
    assert '"links: slides" must be an http(s) or mailto link' in problem


def test_all_problems_in_one_run(tmp_path):
    talkset = load(tmp_path, {"a.yaml": "title: T\nstart: 14:00\n", "b.yaml": "title: [", "c.yaml": PENNINGTON})
    assert len(talkset.errors) == 2
    assert [t.id for t in talkset.talks] == ["c"]


def test_libyaml_and_pure_python_parsers_read_the_same_values_and_lines():
    import yaml

    from announcer.sources.yamlfile import _FastLineLoader, _LineLoader

    def same(a, b):
        assert a == b and type(a) is type(b)
        if isinstance(a, dict):
            assert (a.line, a.lines) == (b.line, b.lines)
            for key in a:
                same(a[key], b[key])
        elif isinstance(a, list):
            for x, y in zip(a, b):
                same(x, y)

    for path in sorted((Path(__file__).parent.parent / "talks").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        same(yaml.load(text, Loader=_FastLineLoader), yaml.load(text, Loader=_LineLoader))


def test_talk_files_are_the_yaml_files_of_the_folder_in_name_order(tmp_path):
    from announcer.sources.talks import talk_paths

    for name in ("b.yml", "a.yaml", "notes.txt", ".yaml", "c.YAML"):
        (tmp_path / name).write_text("")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "link.yaml").symlink_to(tmp_path / "a.yaml")
    assert talk_paths(tmp_path) == [tmp_path / "a.yaml", tmp_path / "b.yml", tmp_path / "link.yaml"]


# Bad input (SPEC 6): each a one-line problem at its line, nothing that raises


def test_a_talk_in_the_autumn_fold_written_in_utc_is_compared_as_instants(tmp_path):
    talkset = load(tmp_path, {"fold.yaml": "title: T\nstart: 2027-11-07T05:30:00+00:00\n"
                                           "end: 2027-11-07T06:30:00+00:00\n"})
    assert talkset.problems == []
    talk = talkset.talks[0]
    assert (talk.end.astimezone(timezone.utc) - talk.start.astimezone(timezone.utc)).total_seconds() == 3600
    assert [talk.start.strftime("%H:%M %Z"), talk.end.strftime("%H:%M %Z")] == ["01:30 EDT", "01:30 EST"]


@pytest.mark.parametrize("start", ["9999-12-31 23:00", "0001-01-01 00:30", "1899-12-31T23:00:00-05:00",
                                   "3000-01-01 10:00:00"])
def test_a_year_out_of_range_is_a_problem(tmp_path, start):
    problem = only_problem(tmp_path, f"title: T\nstart: {start}\n")
    assert problem.startswith(f"{tmp_path}/talks/talk.yaml:2: \"start\": the year ") and "between 1900 and 2999" in problem


@pytest.mark.parametrize("key", ["duration: 99999999999999w", "duration: 999999999d", "duration: " + "9" * 5000 + "s"])
def test_a_duration_out_of_range_is_a_problem(tmp_path, key):
    problem = only_problem(tmp_path, f"title: T\nstart: 2027-02-21 14:00\n{key}\n")
    assert problem.startswith(f"{tmp_path}/talks/talk.yaml:3: \"duration\": '")
    assert "9" * 50 not in problem  # not echoed whole


def test_an_id_too_long_for_a_file_name_is_a_problem_at_load(tmp_path):
    problem = only_problem(tmp_path, f"id: {'x' * 5000}\ntitle: T\nstart: 2027-02-21 14:00\n")
    assert problem == (f"{tmp_path}/talks/talk.yaml:1: id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... is 5000 "
                       "characters long: at most 200 (it names the preview's files)")
    assert load(tmp_path, {"talk.yaml": f"id: {'x' * 200}\ntitle: T\nstart: 2027-02-21 14:00\n"}).errors == []


@pytest.mark.parametrize("field", ["title", "location", "speaker"])
def test_a_one_line_field_longer_than_a_header_should_carry_is_a_problem(tmp_path, field):
    text = f"{field}: {'W' * 2400}\nstart: 2027-02-21 14:00\n" + ("title: T\n" if field != "title" else "")
    problem = only_problem(tmp_path, text)
    assert problem == f'{tmp_path}/talks/talk.yaml:1: "{field}" is 2400 characters long: at most 300 (it goes into mail headers)'


def test_a_number_too_large_to_print_is_not_text(tmp_path):
    problem = only_problem(tmp_path, f"title: 0x{'f' * 4000}\nstart: 2027-02-21 14:00\n")
    assert problem == f'{tmp_path}/talks/talk.yaml:1: "title" must be text; put it in quotes'


def test_an_unknown_zone_too_long_for_a_file_name_is_a_problem(tmp_path):
    problem = only_problem(tmp_path, f"title: T\nstart: 2027-02-21 14:00\ntimezone: {'x' * 5000}\n")
    assert problem.startswith(f"{tmp_path}/talks/talk.yaml:3: unknown timezone 'xxxx")


def test_a_symbolic_link_to_outside_the_talks_folder_is_refused_unread(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    write_series(tmp_path, {"inside.yaml": PENNINGTON})
    (tmp_path / "talks" / "shadow.yaml").symlink_to(secret)
    (tmp_path / "talks" / "alias.yaml").symlink_to(tmp_path / "talks" / "inside.yaml")
    talkset = load_talks(load_config(tmp_path / "announcer.toml").series)
    assert [str(p) for p in talkset.problems] == [
        f"{tmp_path}/talks/shadow.yaml:1: a symbolic link to a file outside the talks folder: not read"]
    assert sorted(t.id for t in talkset.talks) == ["alias", "inside"]


def test_a_link_may_be_longer_than_a_header_line_but_not_without_end(tmp_path):
    long_link = "https://zoom.example/j/1?pwd=" + "x" * 400
    talkset = load(tmp_path, {"talk.yaml": f"title: T\nstart: 2027-02-21 14:00\nonline_url: {long_link}\n"})
    assert talkset.errors == [] and talkset.talks[0].online_url == long_link
    problem = only_problem(tmp_path, f"title: T\nstart: 2027-02-21 14:00\nurl: https://e.edu/{'x' * 5000}\n")
    assert problem.endswith('"url" is 5014 characters long: at most 2000')


def test_a_long_status_is_not_echoed_whole(tmp_path):
    problem = only_problem(tmp_path, f"title: T\nstart: 2027-02-21 14:00\nstatus: {'x' * 5000}\n")
    assert "x" * 100 not in problem and "must be one of confirmed, tentative, cancelled" in problem


@pytest.mark.parametrize("key, value", [("start", "0x" + "f" * 4000), ("start", "[0x" + "f" * 4000 + "]"),
                                        ("duration", "0x" + "f" * 4000), ("end", "{a: 0x" + "f" * 4000 + "}")])
def test_a_number_too_large_to_print_is_one_problem_wherever_it_is(tmp_path, key, value):
    text = f"title: T\nstart: 2027-02-21 14:00\n{key}: {value}\n".replace("start: 2027-02-21 14:00\nstart", "start")
    problem = only_problem(tmp_path, text)
    assert problem.startswith(f"{tmp_path}/talks/talk.yaml:") and "f" * 100 not in problem
