"""A course in one post (SPEC 8.5): `announce: together` gives one announcement for every session."""

from __future__ import annotations

import email
import email.policy
import textwrap
from datetime import datetime, timezone
from pathlib import Path

from icalendar import Calendar
from typer.testing import CliRunner

from announcer.cli import app
from announcer.compose.render import Renderer
from announcer.plan import message_id_for, plan_messages
from announcer.sources.config import load_config
from announcer.sources.courses import course_posts
from announcer.sources.talks import load_talk_file, load_talks

from conftest import write_config
from golden_files import assert_golden

runner = CliRunner()
REPO = Path(__file__).parent.parent
HANIN = (REPO / "talks" / "2027-04-hanin-lectures.yaml").read_text(encoding="utf-8")
COURSE_HEAD = "announce: together\ntitle: Mathematics of Deep Learning\n"
# Five lectures around the US spring-forward change of 14 March 2027 (02:00 EST -> 03:00 EDT).
DST_COURSE = """\
announce: together
title: Mathematics of Deep Learning
speaker:
  name: Boris Hanin
  affiliation: Princeton
notes: Every weekday, for a week.
links:
  lecture notes: https://hanin.princeton.edu/nn-notes.pdf
talks:
  - title: "Lecture 1: Neural Networks for Mathematicians"
    start: 2027-03-12 15:00
    location: Eck 206
    notes: In lieu of the regular dynamics seminar.
  - title: "Lecture 2: Random Neural Networks"
    start: 2027-03-15 15:00
    duration: 1h30m
    location: Eck 202
"""
SENT = "2027-03-05T09:00-05:00"   # the course post is due 7 days before the first lecture, at 09:00


def series(tmp_path: Path, course: str = DST_COURSE, name: str = "hanin.yaml", **series_keys) -> Path:
    config = write_config(tmp_path, series={"url": "https://example.org/seminar/", **series_keys})
    (tmp_path / "talks" / name).write_text(textwrap.dedent(course), encoding="utf-8")
    return config


def cli(config: Path, *args: str):
    return runner.invoke(app, ["--config", str(config), *args])


def outbox(tmp_path: Path) -> list[email.message.EmailMessage]:
    """Every message in the Maildir, oldest first."""
    files = sorted((tmp_path / "outbox" / "new").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


def events(message) -> list:
    return Calendar.from_ical(message.get_body(preferencelist=("calendar",)).get_content()).walk("VEVENT")


# ---- loading and planning ------------------------------------------------------------------

def test_the_sessions_of_a_course_make_one_post_named_by_the_file(tmp_path):
    config = load_config(series(tmp_path))
    loaded = load_talks(config.series)
    assert loaded.problems == []
    assert [t.id for t in loaded.talks] == ["hanin-1", "hanin-2"]   # the feed and the page show these
    [post] = course_posts(loaded.talks)
    assert (post.id, post.title, post.notes) == ("hanin", "Mathematics of Deep Learning", "Every weekday, for a week.")
    assert [s.id for s in post.sessions] == ["hanin-1", "hanin-2"]
    assert (post.start, post.end) == (loaded.talks[0].start, loaded.talks[1].end)
    # A session keeps its own notes and the course's; the post lists the session's own.
    assert loaded.talks[0].notes == "In lieu of the regular dynamics seminar.\n\nEvery weekday, for a week."
    assert loaded.talks[0].own_notes == "In lieu of the regular dynamics seminar."
    assert loaded.talks[1].own_notes is None


def test_the_plan_has_one_announcement_for_the_course_and_reminders_per_session(tmp_path):
    config = load_config(series(tmp_path))
    talks = load_talks(config.series).talks
    now = datetime(2027, 3, 1, tzinfo=timezone.utc)
    plan = plan_messages(config, talks, {}, {}, now)
    rows = [(m.talk_id, m.kind, m.due.isoformat(), m.thread_id) for m in plan.messages]
    course_id = message_id_for("hanin/announcement", "seminar.example.org")
    assert rows == [
        ("hanin", "announcement", "2027-03-05T14:00:00+00:00", None),        # 09:00 EST, 7 days before the first
        ("hanin-1", "reminder", "2027-03-12T19:00:00+00:00", course_id),
        ("hanin-2", "reminder", "2027-03-15T18:00:00+00:00", course_id),    # after the change: EDT
    ]
    assert plan.messages[0].key == "hanin/announcement"
    assert plan.messages[0].closes == talks[0].start                          # missed once the course starts


def test_announce_takes_only_together_and_needs_the_courses_name(tmp_path):
    config = load_config(series(tmp_path))
    path = tmp_path / "talks" / "hanin.yaml"
    path.write_text(DST_COURSE.replace("announce: together", "announce: separately"), encoding="utf-8")
    problems = [str(p) for p in load_talk_file(path, config.series).problems]
    assert problems == [f'{path}:1: "announce" must be "together" (one post announces every talk of the file) '
                        "or left out"]
    path.write_text(DST_COURSE.replace("title: Mathematics of Deep Learning\n", ""), encoding="utf-8")
    problems = [str(p) for p in load_talk_file(path, config.series).problems]
    assert problems == [f'{path}:1: "announce: together" needs the course\'s name as a "title" at the top '
                        "of the file"]


def test_announce_in_a_one_talk_file_says_where_it_goes(tmp_path):
    config = load_config(series(tmp_path))
    path = tmp_path / "talks" / "one.yaml"
    path.write_text("title: T\nspeaker: S\nstart: 2027-03-20 14:00\nannounce: together\n", encoding="utf-8")
    assert [str(p) for p in load_talk_file(path, config.series).problems] == [
        f'{path}:4: unknown key "announce" ("announce: together" goes at the top of a file of several talks, '
        'beside "talks:")']


def test_a_course_named_like_a_talk_is_an_error(tmp_path):
    config = series(tmp_path)
    (tmp_path / "talks" / "other.yaml").write_text("id: hanin\ntitle: T\nspeaker: S\nstart: 2027-03-20 14:00\n",
                                                   encoding="utf-8")
    result = cli(config, "check", "--now", "2027-03-01T00:00Z")
    assert result.exit_code == 1
    assert (f'{tmp_path / "talks" / "hanin.yaml"}:2: the course "hanin" (the file\'s name) is also a talk id, '
            f'at {tmp_path / "talks" / "other.yaml"}:1: rename one of them') in result.stderr


# ---- the course post -------------------------------------------------------------------------

def test_the_course_post_names_the_course_and_lists_every_session(tmp_path):
    config = load_config(series(tmp_path))
    [post] = course_posts(load_talks(config.series).talks)
    rendered = Renderer(config).render(post, "announcement")
    assert rendered.subject == ("Fri 12 - Mon 15 Mar: Boris Hanin (Princeton) - Mathematics of Deep Learning "
                                "(2 sessions)")
    assert rendered.text == textwrap.dedent("""\
        Course announcement: Test Seminar

        Speaker:  Boris Hanin (Princeton)
        Course:   Mathematics of Deep Learning
        When:     2 sessions, Friday 12 - Monday 15 March 2027
        Note:     Every weekday, for a week.

        Sessions

        Lecture 1: Neural Networks for Mathematicians
        When:     Friday 12 March 2027, 3:00-4:00 pm EST
        Where:    Eck 206
        Note:     In lieu of the regular dynamics seminar.

        Lecture 2: Random Neural Networks
        When:     Monday 15 March 2027, 3:00-4:30 pm EDT
        Where:    Eck 202

        Links
        Lecture notes: https://hanin.princeton.edu/nn-notes.pdf

        The attached invite.ics adds every session to your calendar; each
        updates itself if its session moves.
        Series:   https://example.org/seminar/
        """)
    html = rendered.html
    assert "<strong>When:</strong> 2 sessions, Friday 12 - Monday 15 March 2027<br>" in html
    assert '<h1 style="margin:0 0 8px; font-size:22px; line-height:1.3;">Mathematics of Deep Learning</h1>' in html
    assert html.index("Lecture 1: Neural Networks") < html.index("Lecture 2: Random") < html.index("Lecture notes")
    assert "<strong>When:</strong> Monday 15 March 2027, 3:00-4:30 pm EDT<br>" in html
    assert "<strong>Where:</strong> Eck 206<br>" in html
    assert "<strong>Note:</strong> In lieu of the regular dynamics seminar.<br>" in html
    assert "Every weekday, for a week." in html   # the course's notes, once, at the top
    assert html.count("Every weekday, for a week.") == 1


def test_the_course_invite_holds_each_sessions_own_event_in_utc_across_the_clock_change(tmp_path):
    config = series(tmp_path)
    result = cli(config, "send", "--due", "--now", SENT)
    assert result.exit_code == 0, result.output
    [post] = outbox(tmp_path)
    assert post["Message-ID"] == message_id_for("hanin/announcement", "seminar.example.org")
    assert post["In-Reply-To"] is None
    assert [part.get_content_type() for part in post.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/calendar", "text/calendar"]
    first, second = events(post)
    # 15:00 EST (UTC-5) on Friday, 15:00 EDT (UTC-4) on Monday: checked by hand.
    assert (first["DTSTART"].to_ical(), first["DTEND"].to_ical()) == (b"20270312T200000Z", b"20270312T210000Z")
    assert (second["DTSTART"].to_ical(), second["DTEND"].to_ical()) == (b"20270315T190000Z", b"20270315T203000Z")
    assert [str(e["UID"]) for e in (first, second)] == ["hanin-1@seminar.example.org", "hanin-2@seminar.example.org"]
    assert [str(e["LOCATION"]) for e in (first, second)] == ["Eck 206", "Eck 202"]
    assert [e["SEQUENCE"] for e in (first, second)] == [0, 0]
    attached = Calendar.from_ical([p for p in post.walk() if p.get_filename() == "invite.ics"][0].get_content())
    assert [str(e["UID"]) for e in attached.walk("VEVENT")] == [str(e["UID"]) for e in (first, second)]


def test_reminders_thread_under_the_course_post_with_the_sessions_own_uid(tmp_path):
    config = series(tmp_path)
    assert cli(config, "send", "--due", "--now", SENT).exit_code == 0
    result = cli(config, "send", "--due", "--now", "2027-03-12T14:00-05:00")
    assert result.exit_code == 0, result.output
    assert cli(config, "send", "--due", "--now", "2027-03-15T14:00-04:00").exit_code == 0
    post, first, second = outbox(tmp_path)
    for reminder, session in ((first, "hanin-1"), (second, "hanin-2")):
        assert reminder["In-Reply-To"] == reminder["References"] == post["Message-ID"]
        [event] = events(reminder)
        assert str(event["UID"]) == f"{session}@seminar.example.org"
    # The session's own notes and the course's both show in its reminder.
    assert "Note:     In lieu of the regular dynamics seminar.\n          Every weekday, for a week.\n" in text_of(first)
    log = cli(config, "log").stdout
    assert "hanin  announcement  sent" in log and "hanin-1  reminder  sent" in log


def test_a_session_changed_after_the_course_post_gets_its_own_update(tmp_path):
    config = series(tmp_path)
    assert cli(config, "send", "--due", "--now", SENT).exit_code == 0
    path = tmp_path / "talks" / "hanin.yaml"
    path.write_text(DST_COURSE.replace("location: Eck 202", "location: Eck 203"), encoding="utf-8")
    plan = cli(config, "plan", "--now", "2027-03-06T12:00-05:00").stdout
    assert "EST hanin-2 update due Fri" in " ".join(plan.split())
    result = cli(config, "send", "--due", "--now", "2027-03-06T12:00-05:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("sent ") == 1 and "hanin-2 update" in result.stdout
    post, update = outbox(tmp_path)
    assert update["In-Reply-To"] == post["Message-ID"]
    assert "Room changed: Eck 202 → Eck 203" in text_of(update)
    [event] = events(update)
    assert (str(event["UID"]), event["SEQUENCE"], str(event["LOCATION"])) == ("hanin-2@seminar.example.org", 1,
                                                                              "Eck 203")
    # Sent once: the next pass has nothing, and the untouched session never had an update.
    again = cli(config, "send", "--due", "--now", "2027-03-06T12:05-05:00")
    assert again.stdout.startswith("0 sent")


def test_a_session_added_after_the_course_post_is_announced_on_its_own(tmp_path):
    config = series(tmp_path)
    assert cli(config, "send", "--due", "--now", SENT).exit_code == 0
    path = tmp_path / "talks" / "hanin.yaml"
    path.write_text(DST_COURSE + '  - title: "Lecture 3: Extra"\n    start: 2027-03-16 15:00\n', encoding="utf-8")
    # Its own announcement is due by the usual rule (7 days before it, at 09:00): at once, here.
    result = cli(config, "send", "--due", "--now", "2027-03-09T10:00-05:00")
    assert result.exit_code == 0, result.output
    assert [line.split()[1:3] for line in result.stdout.splitlines() if line.startswith("sent")] == [
        ["hanin-3", "announcement"]]
    post, added = outbox(tmp_path)
    assert added["In-Reply-To"] == post["Message-ID"]
    assert "Lecture 3: Extra" in added["Subject"]
    [event] = events(added)
    assert str(event["UID"]) == "hanin-3@seminar.example.org"
    # The sessions the course post listed are not announced again.
    assert "hanin-1  announcement" not in cli(config, "plan", "--all", "--now", "2027-03-09T10:00-05:00").stdout


def test_a_tentative_session_is_left_out_of_the_post_and_announced_once_confirmed(tmp_path):
    tentative = DST_COURSE.replace("    location: Eck 202\n", "    location: Eck 202\n    status: tentative\n")
    config = series(tmp_path, tentative)
    assert cli(config, "send", "--due", "--now", SENT).exit_code == 0
    [post] = outbox(tmp_path)
    assert [str(e["UID"]) for e in events(post)] == ["hanin-1@seminar.example.org"]
    assert "Lecture 2" not in text_of(post)
    (tmp_path / "talks" / "hanin.yaml").write_text(DST_COURSE, encoding="utf-8")   # confirmed now
    result = cli(config, "send", "--due", "--now", "2027-03-09T10:00-05:00")
    assert "sent      hanin-2 announcement" in result.stdout
    assert outbox(tmp_path)[1]["In-Reply-To"] == post["Message-ID"]


def test_the_feed_and_the_page_keep_one_event_and_row_per_session(tmp_path):
    config = series(tmp_path)
    result = cli(config, "calendar", "--now", "2027-03-01T00:00Z")
    assert result.exit_code == 0, result.output
    uids = [str(e["UID"]) for e in Calendar.from_ical(result.stdout).walk("VEVENT")]
    assert uids == ["hanin-1@seminar.example.org", "hanin-2@seminar.example.org"]
    result = cli(config, "site", "--out", str(tmp_path / "site"), "--now", "2027-03-01T00:00Z")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert page.count("<tr class=") == 2 and 'id="hanin-1"' in page and 'id="hanin-2"' in page
    assert 'id="hanin"' not in page


def test_course_sessions_in_several_zones_name_the_day_where_it_differs(tmp_path):
    late = DST_COURSE.replace("start: 2027-03-12 15:00", "start: 2027-03-12 22:00")
    config = load_config(series(tmp_path, late, also_show=["Asia/Kolkata"]))
    [post] = course_posts(load_talks(config.series).talks)
    rendered = Renderer(config).render(post, "announcement")
    assert ("When:     Friday 12 March 2027, 10:00-11:00 pm EST\n"
            "          08:30 IST, Sat 13 Mar\n") in rendered.text
    assert "When:     Monday 15 March 2027, 3:00-4:30 pm EDT\n          00:30 IST, Tue 16 Mar\n" in rendered.text


# ---- seed 001, the five lectures: golden -----------------------------------------------------

def test_the_seed_course_announcement_matches_golden(tmp_path):
    config = series(tmp_path, COURSE_HEAD + HANIN, name="2027-04-hanin-lectures.yaml")
    result = cli(config, "preview", "2027-04-hanin-lectures", "--kind", "announcement", "--out",
                 str(tmp_path / "previews"), "--now", "2027-03-29T09:00-04:00")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {tmp_path / 'previews' / '2027-04-hanin-lectures.announcement.eml'}\n"
    data = (tmp_path / "previews" / "2027-04-hanin-lectures.announcement.eml").read_bytes()
    assert_golden("hanin-lectures.announcement.eml", data)
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["Subject"] == ("Mon 5 - Fri 9 Apr: Boris Hanin (Princeton) - Mathematics of Deep Learning "
                                  "(5 sessions)")
    assert [str(e["LOCATION"]) for e in events(message)] == ["Eck 206", "Eck 202", "Eck 202", "Eck 203", "Eck 202"]
