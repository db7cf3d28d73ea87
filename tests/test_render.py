"""The Jinja renderer: built-in templates, overrides, times, changes, and template errors."""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from announcer.compose.mailman import command_word
from announcer.compose.render import (
    BUILTIN_KINDS,
    Renderer,
    _bytecode_cache,
    _environment,
    _one_blank_line_at_most,
)
from announcer.errors import InputError
from announcer.plan import Change
from announcer.sources.config import Config
from announcer.sources.talk import Talk

from series_files import load_mad_talks

PENNINGTON = """\
id: 2027-02-21-pennington
title: Dynamical Isometry and a Mean Field Theory of Signal Propagation in Deep Neural Networks
speaker:
  name: Jeffrey Pennington
  affiliation: Google
  url: https://scholar.google.com/citations?user=cn_FoswAAAAJ
  bio: Jeffrey Pennington is a Research Scientist at Google Brain, New York City.
start: 2027-02-21 14:00
notes: Reception will follow.
abstract: |
  In recent years, many state-of-the-art models in deep learning have utilized increasingly
  deep architectures, with some successful models like deep residual networks employing
  hundreds or even thousands of layers. See [the paper](https://arxiv.org/abs/1711.04735).
links:
  video: https://www.youtube.com/watch?v=AQKgBk8HDI4
"""


def load(tmp_path: Path, talk_yaml: str, extra: str = "") -> tuple[Config, Talk]:
    config, talks = load_mad_talks(tmp_path, talk_yaml, extra=extra)
    return config, talks[0]


def render(tmp_path: Path, talk_yaml: str = PENNINGTON, kind: str = "announcement", extra: str = "", **kw):
    config, talk = load(tmp_path, talk_yaml, extra)
    return Renderer(config).render(talk, kind, **kw)


def test_announcement_text_says_who_what_when_where_in_order(tmp_path):
    text = render(tmp_path).text
    order = ["Talk announcement: MaD Seminar", "Speaker:  Jeffrey Pennington (Google)",
             "Title:    Dynamical Isometry", "When:     Sunday 21 February 2027, 2:00-3:00 pm EST",
             "Where:    Auditorium Hall 150", "Note:     Reception will follow.", "Abstract",
             "the paper <https://arxiv.org/abs/1711.04735>", "About the speaker",
             "Video:    https://www.youtube.com/watch?v=AQKgBk8HDI4", "The attached invite.ics",
             "Series:   https://example.edu/mad/",
             "List options: https://lists.example.edu/mailman/listinfo/mad"]
    positions = [text.find(piece) for piece in order]
    assert -1 not in positions, [p for p, at in zip(order, positions) if at == -1]
    assert positions == sorted(positions)
    for line in text.splitlines():  # 72 columns, except a line that is one unbreakable link
        assert len(line) <= 72 or "://" in line, line


def test_subject_is_one_line_with_when_who_what(tmp_path):
    subject = render(tmp_path).subject
    assert subject == ("Sun 21 Feb, 2:00 pm: Jeffrey Pennington (Google) - Dynamical Isometry and a "
                       "Mean Field Theory of Signal Propagation in Deep Neural Networks")


def test_a_talk_without_title_reads_tba(tmp_path):
    rendered = render(tmp_path, "speaker: Ahmed El Alaoui\nstart: 2027-02-28 14:00\n")
    assert rendered.subject == "Sun 28 Feb, 2:00 pm: Ahmed El Alaoui - TBA"
    assert "Title:    TBA" in rendered.text
    assert ">TBA</h1>" in rendered.html


def test_script_in_abstract_and_title_is_escaped_in_html(tmp_path):
    rendered = render(tmp_path, """\
        title: Attacks <script>alert(1)</script> on nets
        speaker: Mallory
        start: 2027-02-28 14:00
        abstract: |
          Hello <script>alert("x")</script> and [click](javascript:alert(1)) <b>bold</b>
        """)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in rendered.html
    assert "&lt;b&gt;bold&lt;/b&gt;" in rendered.html
    assert 'href="javascript' not in rendered.html


def test_non_ascii_speaker_in_every_part(tmp_path):
    rendered = render(tmp_path, """\
        title: Statistical physics of learning
        speaker: {name: Lenka Zdeborová, affiliation: EPFL}
        start: 2027-03-30 17:15
        timezone: Europe/Zurich
        """)
    assert "Lenka Zdeborová (EPFL)" in rendered.subject
    assert "Speaker:  Lenka Zdeborová (EPFL)" in rendered.text
    assert "Lenka Zdeborová" in rendered.html
    assert "Tuesday 30 March 2027, 5:15-6:15 pm CEST" in rendered.text


def test_reminder_is_shorter_with_one_line_of_abstract_and_the_online_link(tmp_path):
    talk = PENNINGTON + "online_url: https://zoom.example/j/123\n"
    reminder = render(tmp_path, talk, "reminder")
    announcement = render(tmp_path, talk, "announcement")
    assert len(reminder.text) < len(announcement.text) / 1.5
    assert reminder.subject.startswith("Reminder: Sun 21 Feb, 2:00 pm: Jeffrey Pennington")
    assert "Online:   https://zoom.example/j/123" in reminder.text
    assert "About:    In recent years" in reminder.text
    assert "Abstract" not in reminder.text and "About the speaker" not in reminder.text


def test_reminder_carries_the_talks_links_in_text_and_html(tmp_path):
    talk = PENNINGTON + "  lecture notes: https://hanin.princeton.edu/nn-notes.pdf\n"
    reminder = render(tmp_path, talk, "reminder")
    assert "Links\nVideo:    https://www.youtube.com/watch?v=AQKgBk8HDI4\n" in reminder.text
    assert "Lecture notes: https://hanin.princeton.edu/nn-notes.pdf" in reminder.text
    assert ('<li>Lecture notes: <a href="https://hanin.princeton.edu/nn-notes.pdf"'
            in reminder.html)
    assert '<a href="https://www.youtube.com/watch?v=AQKgBk8HDI4"' in reminder.html


@pytest.mark.parametrize("kind", BUILTIN_KINDS)
def test_an_online_only_talk_shows_its_link_where_the_room_would_be(tmp_path, kind):
    talk = PENNINGTON + "location: online\nonline_url: https://zoom.example/j/123\n"
    rendered = render(tmp_path, talk, kind, changes=[Change("location", "Eck 206", None)])
    assert "Where:    https://zoom.example/j/123\n" in rendered.text
    assert "Auditorium" not in rendered.text and "Online:" not in rendered.text
    assert ('<strong>Where:</strong> <a href="https://zoom.example/j/123" style="color:#1a5fb4;">'
            "https://zoom.example/j/123</a>") in rendered.html
    assert "Auditorium" not in rendered.html and "Online:" not in rendered.html
    if kind == "update":
        assert rendered.text.startswith("Room changed: Eck 206 → online\n")


def test_a_talk_with_a_room_and_a_link_shows_both(tmp_path):
    rendered = render(tmp_path, PENNINGTON + "online_url: https://zoom.example/j/123\n")
    assert "Where:    Auditorium Hall 150" in rendered.text
    assert "Online:   https://zoom.example/j/123" in rendered.text
    assert "<strong>Where:</strong> Auditorium Hall 150" in rendered.html
    assert "<strong>Online:</strong> <a" in rendered.html


COURSE = """\
speaker: Boris Hanin
notes: A special lecture course on the mathematics of deep learning, every day this week.
talks:
  - title: "Lecture 4: Deep Learning in the Mean-Field Regime"
    start: 2027-04-08 15:30
    location: Eck 203
    notes: In lieu of the regular NB/GT seminar. Room corrected from Eck 206, which was double-booked.
"""


@pytest.mark.parametrize("kind", BUILTIN_KINDS)
def test_a_course_sessions_notes_and_the_courses_both_show(tmp_path, kind):
    rendered = render(tmp_path, COURSE, kind)
    assert ("Note:     In lieu of the regular NB/GT seminar. Room corrected from Eck\n"
            "          206, which was double-booked.\n"
            "          A special lecture course on the mathematics of deep learning,\n"
            "          every day this week.\n") in rendered.text
    assert ("In lieu of the regular NB/GT seminar. Room corrected from Eck 206, which was double-booked."
            "<br>\nA special lecture course on the mathematics of deep learning, every day this week.</p>"
            in rendered.html)


def test_update_opens_with_what_changed_old_and_new(tmp_path):
    hanin = """\
        title: Deep Learning in the Mean-Field Regime
        speaker: {name: Boris Hanin, affiliation: Princeton}
        start: 2027-04-08 15:30
        location: Eck 203
        """
    changes = (Change("location", "Eck 206", "Eck 203"),
               Change("start", "2027-04-08T19:00:00+00:00", "2027-04-08T19:30:00+00:00"),
               Change("end", "2027-04-08T20:00:00+00:00", "2027-04-08T20:30:00+00:00"))
    rendered = render(tmp_path, hanin, "update", changes=changes, sequence=1)
    lines = rendered.text.splitlines()
    assert lines[0] == ("Time changed: Thursday 8 April 2027, 3:00-4:00 pm EDT → Thursday 8 April")
    assert lines[1] == "    2027, 3:30-4:30 pm EDT"
    assert lines[2] == "Room changed: Eck 206 → Eck 203"
    assert rendered.text.count("Time changed") == 1  # a moved start and end are one change
    assert rendered.subject.startswith("Update (new time, new room): Thu 8 Apr, 3:30 pm: Boris Hanin")
    assert "<s>Eck 206</s> → <strong>Eck 203</strong>" in rendered.html


def test_cancellation_says_cancelled_first(tmp_path):
    rendered = render(tmp_path, kind="cancellation")
    assert rendered.subject.startswith("CANCELLED: Sun 21 Feb, 2:00 pm: Jeffrey Pennington")
    assert rendered.text.startswith("CANCELLED: this MaD Seminar talk will not take place.\n")
    assert "removes this talk from your calendar" in rendered.text
    assert rendered.html.index("CANCELLED") < rendered.html.index("<h1")


@pytest.mark.parametrize("kind", ["announcement", "reminder", "update", "cancellation"])
def test_default_templates_keep_command_words_out_of_the_top(tmp_path, kind):
    rendered = render(tmp_path, PENNINGTON + "online_url: https://zoom.example/j/1\n", kind,
                      changes=(Change("location", "Help desk", "Who's Who room"),))
    assert command_word(rendered.subject) is None
    top = [line for line in rendered.text.splitlines() if line.strip()][:10]
    assert all(command_word(line) is None for line in top), top


def test_an_override_replaces_only_its_own_file(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "announcement.subject.j2").write_text(
        "[{{ series.name }}] {{ talk.title }} ({{ kind }}, seq {{ sequence }})\n", encoding="utf-8")
    rendered = render(tmp_path, extra='templates_dir = "mine"', sequence=2)
    assert rendered.subject == ("[MaD Seminar] Dynamical Isometry and a Mean Field Theory of Signal "
                                "Propagation in Deep Neural Networks (announcement, seq 2)")
    assert rendered.text.startswith("Talk announcement: MaD Seminar")  # built-in text
    assert "<h1" in rendered.html  # built-in HTML


def test_an_override_added_later_is_picked_up_by_the_cached_environment(tmp_path):
    (tmp_path / "mine").mkdir()
    config, talk = load(tmp_path, PENNINGTON, 'templates_dir = "mine"')
    renderer = Renderer(config)
    before = renderer.render(talk, "reminder")
    (tmp_path / "mine" / "reminder.txt.j2").write_text("Custom reminder {{ talk.id }}\n", encoding="utf-8")
    after = renderer.render(talk, "reminder")
    assert before.text.startswith("Reminder: MaD Seminar")
    assert after.text == "Custom reminder 2027-02-21-pennington\n"


def test_a_template_changed_between_runs_is_compiled_again_not_taken_from_the_cache(tmp_path):
    (tmp_path / "mine").mkdir()
    override = tmp_path / "mine" / "reminder.txt.j2"
    config, talk = load(tmp_path, PENNINGTON, 'templates_dir = "mine"')
    texts = []
    for version in ("first", "second"):
        override.write_text(f"{version} {{{{ talk.id }}}}\n", encoding="utf-8")
        _environment.cache_clear()  # as a new run starts: only the bytecode cache remembers
        texts.append(Renderer(config).render(talk, "reminder").text)
    assert Renderer(config).env.bytecode_cache is not None
    assert texts == ["first 2027-02-21-pennington\n", "second 2027-02-21-pennington\n"]


def test_templates_compile_when_the_bytecode_cache_folder_is_not_safe(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / f"_jinja2-cache-{os.getuid()}").write_text("not a folder")  # Jinja refuses it
    assert _bytecode_cache() is None
    _environment.cache_clear()
    try:
        config, talk = load(tmp_path, PENNINGTON)
        assert Renderer(config).render(talk, "reminder").text.startswith("Reminder: MaD Seminar")
    finally:
        _environment.cache_clear()


def test_a_cache_folder_cleaned_away_meanwhile_only_means_compiling(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "mine").mkdir()
    override = tmp_path / "mine" / "reminder.txt.j2"
    override.write_text("first {{ talk.id }}\n", encoding="utf-8")
    _environment.cache_clear()
    try:
        config, talk = load(tmp_path, PENNINGTON, 'templates_dir = "mine"')
        renderer = Renderer(config)
        assert renderer.render(talk, "reminder").text == "first 2027-02-21-pennington\n"
        shutil.rmtree(renderer.env.bytecode_cache.directory)  # as a tmp cleaner would
        override.write_text("second {{ talk.id }}\n", encoding="utf-8")
        assert renderer.render(talk, "reminder").text == "second 2027-02-21-pennington\n"
    finally:
        _environment.cache_clear()


def test_templates_are_parsed_once_per_series(tmp_path):
    config, talk = load(tmp_path, PENNINGTON)
    first = Renderer(config).env.get_template("announcement.txt.j2")
    Renderer(config).render(talk, "announcement")
    assert Renderer(config).env.get_template("announcement.txt.j2") is first


def test_an_undefined_variable_is_a_path_line_error(tmp_path):
    (tmp_path / "mine").mkdir()
    override = tmp_path / "mine" / "announcement.txt.j2"
    override.write_text("Hello\n\n{{ talk.speakr }}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        render(tmp_path, extra='templates_dir = "mine"')
    [problem] = caught.value.problems
    assert (Path(problem.path), problem.line) == (override, 3)
    assert "speakr" in problem.message
    assert str(problem).startswith(f"{override}:3: template error")


def test_an_undefined_variable_in_an_included_template_names_that_file(tmp_path):
    (tmp_path / "mine").mkdir()
    partial = tmp_path / "mine" / "_footer.txt.j2"
    partial.write_text("Footer\n{{ nonsense }}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        render(tmp_path, extra='templates_dir = "mine"')
    [problem] = caught.value.problems
    assert (Path(problem.path), problem.line) == (partial, 2)
    assert "'nonsense' is undefined" in problem.message


def test_a_helper_misused_in_a_template_is_a_path_line_error(tmp_path):
    (tmp_path / "mine").mkdir()
    override = tmp_path / "mine" / "reminder.subject.j2"
    override.write_text("{# the talk, not its title #}\n{{ talk.title|when }}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        render(tmp_path, kind="reminder", extra='templates_dir = "mine"')
    [problem] = caught.value.problems
    assert (Path(problem.path), problem.line) == (override, 2)
    assert "AttributeError" in problem.message


def test_a_syntax_error_is_a_path_line_error(tmp_path):
    (tmp_path / "mine").mkdir()
    override = tmp_path / "mine" / "update.html.j2"
    override.write_text("<p>\n{% if talk.title %}\n<b>{{ talk.title }}</b>\n", encoding="utf-8")
    config, talk = load(tmp_path, PENNINGTON, 'templates_dir = "mine"')
    with pytest.raises(InputError) as caught:
        Renderer(config).render(talk, "update")
    [problem] = caught.value.problems
    assert Path(problem.path) == override and problem.line is not None
    assert "syntax error" in problem.message
    assert Renderer(config).check(["update"])[0].path == str(override)


def test_a_kind_without_templates_is_reported(tmp_path):
    config, talk = load(tmp_path, PENNINGTON)
    with pytest.raises(InputError, match='no template "seminar-digest.subject.j2"') as caught:
        Renderer(config).render(talk, "seminar-digest")
    assert caught.value.problems[0].path == config.path  # where the kind is scheduled
    assert Renderer(config).check(BUILTIN_KINDS) == []


def test_blank_lines_collapse_as_the_regex_would():
    rng = random.Random(3)
    for _ in range(5000):
        text = "".join(rng.choice(["a", "\n", " ", "\n\n", "\n\n\n", "\t", "\r\n"]) for _ in range(rng.randrange(30)))
        assert _one_blank_line_at_most(text) == re.sub(r"\n{3,}", "\n\n", text), repr(text)
