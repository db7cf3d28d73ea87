"""`announcer import` (SPEC 8.1): seeds, calendars, feeds over real HTTP, re-imports, the report, bad input."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from announcer.cli import app
from announcer.importers import import_talks
from announcer.sources.config import load_config
from announcer.sources.talks import load_talk_file

from conftest import write_config

SEEDS = Path(__file__).parent / "seeds"
UTC = timezone.utc
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def series(tmp_path):
    """A series folder (America/New_York, Maildir) with an empty talks folder; returns its config path."""
    return write_config(tmp_path)


def imported(config: Path, *sources, expect=0):
    result = run("--config", config, "import", *sources)
    assert result.exit_code == expect, result.output
    assert "Traceback" not in result.output
    return result


def talk(config: Path, name: str):
    """The one talk of talks/NAME.yaml, loaded as `check` loads it (no problems allowed)."""
    loaded = load_talk_file(config.parent / "talks" / f"{name}.yaml", load_config(config).series)
    assert loaded.problems == [] and len(loaded.talks) == 1
    return loaded.talks[0]


def data(config: Path, name: str) -> dict:
    return yaml.safe_load((config.parent / "talks" / f"{name}.yaml").read_text(encoding="utf-8"))


def checks_and_previews(config: Path, talk_id: str, now: str) -> None:
    checked = run("--config", config, "check", "--now", now)
    assert checked.exit_code == 0, checked.output
    assert "0 errors" in checked.stdout
    preview = run("--config", config, "preview", talk_id, "--kind", "announcement", "--now", now)
    assert preview.exit_code == 0, preview.output
    assert "Subject:" in preview.stdout


# --- the seeds ------------------------------------------------------------------------------

@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin"])
def test_seed_002_ics_keeps_the_instant_and_splits_summary_and_description(tmp_path, zone):
    config = write_config(tmp_path, series={"timezone": zone})
    result = imported(config, SEEDS / "002-department.ics")
    assert result.stdout.endswith("1 talk written, 0 updated, 0 unchanged, 5 warnings\n")
    mahoney = talk(config, "2019-11-05-mahoney")
    assert mahoney.start.astimezone(UTC) == datetime(2019, 11, 5, 15, 45, tzinfo=UTC)
    assert mahoney.end.astimezone(UTC) == datetime(2019, 11, 5, 16, 45, tzinfo=UTC)
    (speaker,) = mahoney.speakers
    assert speaker.name == "Michael Mahoney"
    assert speaker.affiliation == "ICSI and Department of Statistics, University of California at Berkeley"
    assert mahoney.title == ("Why Deep Learning Works: Traditional and Heavy-Tailed Implicit "
                             "Self-Regularization in Deep Neural Networks")
    assert mahoney.location == "Hackerman Hall B-17"
    assert mahoney.abstract.startswith("While deep neural networks (DNNs) have achieved remarkable success")
    assert mahoney.abstract.endswith("it also provides an explanation of why deep learning works.")
    assert "processing, they are complex" in mahoney.abstract  # "\," unescaped
    assert speaker.bio.startswith("Michael W. Mahoney is at the University of California at Berkeley")
    assert speaker.bio.endswith("Institute at UC Berkeley.")
    assert mahoney.url.startswith("https://www.cs.jhu.edu/event/cs-seminar-michael-mahoney")
    assert data(config, "2019-11-05-mahoney")["id"] == "2019-11-05-mahoney"
    assert data(config, "2019-11-05-mahoney")["source_uid"] == "1962355-1572950700-1572954300@www.cs.jhu.edu"
    where = SEEDS / "002-department.ics"
    assert result.stderr.splitlines() == [
        f"{where}:6: X-WR-CALNAME not imported",
        f"{where}:7: X-ORIGINAL-URL not imported",
        f"{where}:8: X-WR-CALDESC not imported",
        f"{where}:31: SUMMARY's series name 'CS Seminar' not imported",
        f"{where}:32: DESCRIPTION's Video part not imported (no link in it): 'Watch seminar video.'",
    ]
    checks_and_previews(config, "2019-11-05-mahoney", "2019-10-01T00:00Z")


def test_seed_000_schedule_gives_a_talk_a_row_with_placeholders(series):
    result = imported(series, SEEDS / "000-hugo-schedule.md")
    assert result.stdout.endswith("12 talks written, 0 updated, 0 unchanged, 10 warnings\n")
    pennington = talk(series, "2017-02-21-pennington")  # Feb 21 after the page's date, 2016-12-22
    assert pennington.start == datetime(2017, 2, 21, 14, 0, tzinfo=pennington.timezone)
    assert pennington.end == datetime(2017, 2, 21, 15, 0, tzinfo=pennington.timezone)
    assert pennington.title.startswith("Dynamical Isometry and a Mean Field Theory")
    assert pennington.speakers[0].name == "Jeffrey Pennington" and pennington.speakers[0].affiliation == "Google"
    assert pennington.speakers[0].url == "https://scholar.google.com/citations?user=cn_FoswAAAAJ&hl=en"
    assert pennington.abstract.startswith("In recent years, many state-of-the-art models")  # under #jeffrey
    assert pennington.location == "Auditorium Hall 150, Center for Data Science, NYU, 60 5th ave"
    assert pennington.notes == "Reception will follow."
    alaoui = talk(series, "2017-02-28-alaoui")
    assert alaoui.title is None and alaoui.speakers[0].name == "Ahmed El Alaoui"
    placeholders = sorted(p.stem for p in (series.parent / "talks").glob("*-tba.yaml"))
    assert placeholders[0] == "2017-03-07-tba" and placeholders[-1] == "2017-05-08-tba"
    assert len(placeholders) == 10
    for name in placeholders:
        slot = talk(series, name)
        assert slot.title is None and slot.speakers == () and slot.start.hour == 14
    assert data(series, "2017-05-01-tba")["source_uid"].endswith("000-hugo-schedule.md#2017-05-01")
    where = SEEDS / "000-hugo-schedule.md"
    notes = result.stderr.splitlines()
    assert f"{where}:2: Tags not imported" in notes
    assert f"{where}:12: title not imported" in notes
    assert f"{where}:46: page text not imported: '[Schedule Fall 2018](https://mathsanddatanyu.gith…'" in notes
    assert not any(":13:" in note for note in notes)  # `date` placed the years; `Description = ""` is empty
    checks_and_previews(series, "2017-02-21-pennington", "2017-01-01T00:00Z")


def test_seed_004_jekyll_page(series):
    result = imported(series, SEEDS / "004-jekyll-talk.md")
    assert result.stdout.endswith("1 talk written, 0 updated, 0 unchanged, 3 warnings\n")
    mukherjee = talk(series, "2020-09-08-mukherjee")
    assert mukherjee.start == datetime(2020, 9, 8, 17, 0, tzinfo=mukherjee.timezone)
    assert mukherjee.title == "Mathematics of Neural Networks"
    assert mukherjee.speakers[0].name == "Anirbit Mukherjee"
    assert mukherjee.speakers[0].bio.startswith("Anirbit Mukherjee finished his Ph.D.")
    assert mukherjee.abstract.startswith("One of the paramount mathematical mysteries")  # Topic_abstract
    assert dict(mukherjee.links) == {"video": "https://www.youtube.com/watch?v=AQKgBk8HDI4"}
    where = SEEDS / "004-jekyll-talk.md"
    assert result.stderr.splitlines() == [f"{where}:2: layout not imported", f"{where}:4: n not imported",
                                          f"{where}:7: img not imported"]
    checks_and_previews(series, "2020-09-08-mukherjee", "2020-09-01T00:00Z")


def test_a_folder_imports_every_page_and_calendar_below_it(series, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(SEEDS, site / "nested")
    result = imported(series, site)
    assert "14 talks written" in result.stdout  # README.md has no front matter: not a page
    assert (series.parent / "talks" / "2019-11-05-mahoney.yaml").exists()


# --- a calendar feed, each instant checked by hand ------------------------------------------

FEED = textwrap.dedent("""\
    BEGIN:VCALENDAR
    VERSION:2.0
    PRODID:-//Test//Feed//EN
    BEGIN:VTIMEZONE
    TZID:Eastern (custom)
    BEGIN:STANDARD
    DTSTART:16011104T020000
    RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11
    TZOFFSETFROM:-0400
    TZOFFSETTO:-0500
    END:STANDARD
    BEGIN:DAYLIGHT
    DTSTART:16010311T020000
    RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3
    TZOFFSETFROM:-0500
    TZOFFSETTO:-0400
    END:DAYLIGHT
    END:VTIMEZONE
    BEGIN:VEVENT
    UID:weekly@example.org
    DTSTART;TZID=Eastern (custom):20270302T140000
    DTEND;TZID=Eastern (custom):20270302T150000
    RRULE:FREQ=WEEKLY;COUNT=3
    SUMMARY:Reading group: Ada Lovelace\\, Analytical Engines – “Notes on the Engine”
    X-ALT-DESC;FMTTYPE=text/html:<p>Notes</p>
    END:VEVENT
    BEGIN:VEVENT
    UID:floating@example.org
    DTSTART:20270701T100000
    DURATION:PT90M
    SUMMARY:Summer talk\\; floating time
    LOCATION:Room 5\\, East Wing
    BEGIN:VALARM
    ACTION:DISPLAY
    TRIGGER:-PT15M
    END:VALARM
    END:VEVENT
    BEGIN:VEVENT
    UID:cancelled@example.org
    DTSTART:20270405T180000Z
    DTEND:20270405T190000Z
    SUMMARY:Called off
    STATUS:CANCELLED
    END:VEVENT
    BEGIN:VEVENT
    UID:tentative@example.org
    DTSTART;TZID=America/Chicago:20271103T090000
    SUMMARY:Maybe
    STATUS:TENTATIVE
    END:VEVENT
    END:VCALENDAR
    """)


def instants(config: Path) -> dict[str, tuple[datetime, str, str | None]]:
    folder = config.parent / "talks"
    series = load_config(config).series
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        (one,) = load_talk_file(path, series).talks
        found[path.stem] = (one.start.astimezone(UTC), one.status, one.title)
    return found


def test_a_feed_keeps_every_instant_across_dst_floating_recurring_and_status(series, tmp_path):
    feed = tmp_path / "feed.ics"
    feed.write_text(FEED, encoding="utf-8")
    result = imported(series, feed)
    assert result.stdout.endswith("6 talks written, 0 updated, 0 unchanged, 3 warnings\n")
    assert instants(series) == {
        # 14:00 in the feed's own VTIMEZONE: EST (-5) before 14 March 2027, EDT (-4) after
        "2027-03-02-lovelace": (datetime(2027, 3, 2, 19, 0, tzinfo=UTC), "confirmed", "Notes on the Engine"),
        "2027-03-09-lovelace": (datetime(2027, 3, 9, 19, 0, tzinfo=UTC), "confirmed", "Notes on the Engine"),
        "2027-03-16-lovelace": (datetime(2027, 3, 16, 18, 0, tzinfo=UTC), "confirmed", "Notes on the Engine"),
        "2027-04-05-called-off": (datetime(2027, 4, 5, 18, 0, tzinfo=UTC), "cancelled", "Called off"),
        # floating 10:00 read in the series' zone, New York in July: EDT (-4)
        "2027-07-01-summer-talk-floating-time": (datetime(2027, 7, 1, 14, 0, tzinfo=UTC), "confirmed",
                                                  "Summer talk; floating time"),
        # 09:00 Chicago on 3 November 2027: still CDT (-5), Chicago falls back on the 7th
        "2027-11-03-maybe": (datetime(2027, 11, 3, 14, 0, tzinfo=UTC), "tentative", "Maybe"),
    }
    floating = talk(series, "2027-07-01-summer-talk-floating-time")
    assert floating.location == "Room 5, East Wing"
    assert floating.end - floating.start == (datetime(2027, 7, 1, 11, 30) - datetime(2027, 7, 1, 10, 0))
    lovelace = talk(series, "2027-03-16-lovelace")
    assert lovelace.speakers[0].name == "Ada Lovelace" and lovelace.speakers[0].affiliation == "Analytical Engines"
    assert data(series, "2027-03-16-lovelace")["source_uid"] == "weekly@example.org/20270316T180000Z"
    assert result.stderr.splitlines() == [f"{feed}:24: SUMMARY's series name 'Reading group' not imported",
                                          f"{feed}:25: X-ALT-DESC not imported", f"{feed}:33: VALARM not imported"]


def test_recurring_events_are_expanded_up_to_a_year_after_the_import(series, tmp_path):
    feed = tmp_path / "weekly.ics"
    feed.write_text(textwrap.dedent("""\
        BEGIN:VCALENDAR
        VERSION:2.0
        BEGIN:VEVENT
        UID:open-ended@example.org
        DTSTART;TZID=America/New_York:20260106T160000
        RRULE:FREQ=WEEKLY
        SUMMARY:Weekly seminar
        END:VEVENT
        END:VCALENDAR
        """), encoding="utf-8")
    now = datetime(2027, 1, 1, tzinfo=UTC)
    report = import_talks(str(series), [str(feed)], now=now)
    starts = sorted(planned.path.stem[:10] for planned in report.files)
    # Tuesdays from 6 January 2026 (past ones included) to the last before 1 January 2028: 104 of them
    assert starts[0] == "2026-01-06" and starts[-1] == "2027-12-28" and len(starts) == 104


def test_all_day_events_and_unknown_zones_are_reported(series, monkeypatch):
    monkeypatch.chdir(series.parent)
    Path("feed.ics").write_text(textwrap.dedent("""\
        BEGIN:VCALENDAR
        BEGIN:VEVENT
        UID:retreat@example.org
        DTSTART;VALUE=DATE:20270105
        SUMMARY:Retreat
        END:VEVENT
        BEGIN:VEVENT
        UID:somewhere@example.org
        DTSTART;TZID=Nowhere/Land:20270106T100000
        SUMMARY:Somewhere
        END:VEVENT
        END:VCALENDAR
        """), encoding="utf-8")
    result = imported(series, "feed.ics")
    assert result.stdout == "wrote talks/2027-01-06-somewhere.yaml\n1 talk written, 0 updated, 0 unchanged, 2 warnings\n"
    assert result.stderr.splitlines() == ["feed.ics:4: all-day event 'Retreat' has no time: not imported",
                                          "feed.ics:9: TZID 'Nowhere/Land' has no VTIMEZONE: read in America/New_York"]
    assert talk(series, "2027-01-06-somewhere").start.astimezone(UTC) == datetime(2027, 1, 6, 15, 0, tzinfo=UTC)


def test_a_floating_time_is_read_in_the_calendars_x_wr_timezone_when_it_names_one(series, tmp_path):
    feed = tmp_path / "london.ics"
    feed.write_text("BEGIN:VCALENDAR\nX-WR-TIMEZONE:Europe/London\nBEGIN:VEVENT\nUID:f@example.org\n"
                    "DTSTART:20270706T100000\nSUMMARY:Tea\nEND:VEVENT\nEND:VCALENDAR\n", encoding="utf-8")
    imported(series, feed)
    # 10:00 in London in July (BST, +1) is 09:00 UTC, written as 05:00 in the series' New York
    assert talk(series, "2027-07-06-tea").start.astimezone(UTC) == datetime(2027, 7, 6, 9, 0, tzinfo=UTC)
    assert data(series, "2027-07-06-tea")["start"] == "2027-07-06 05:00"


# --- a feed over HTTP --------------------------------------------------------------------------

class _Feed(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def web(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *args, **kwargs: _Feed(*args, directory=str(root), **kwargs)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_http_feed_is_imported(series, web):
    root, server = web
    (root / "feed.ics").write_text(FEED, encoding="utf-8")
    url = f"http://127.0.0.1:{server.server_port}/feed.ics"
    result = imported(series, url)
    assert "6 talks written" in result.stdout
    assert f"{url}:25: X-ALT-DESC not imported" in result.stderr
    assert instants(series)["2027-03-16-lovelace"][0] == datetime(2027, 3, 16, 18, 0, tzinfo=UTC)


def test_a_webcal_feed_is_fetched_over_https(series, web, trustme_ca, smtp_ca, monkeypatch):
    root, server = web
    (root / "feed.ics").write_text(FEED, encoding="utf-8")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme_ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_ca))  # the client trusts the test CA
    result = imported(series, f"webcal://127.0.0.1:{server.server_port}/feed.ics")
    assert "6 talks written" in result.stdout


def test_http_errors_are_one_line_and_write_nothing(series, web, closed_port):
    root, server = web
    (root / "feed.ics").write_text(FEED, encoding="utf-8")
    good = f"http://127.0.0.1:{server.server_port}/feed.ics"
    missing = f"http://127.0.0.1:{server.server_port}/missing.ics"
    result = imported(series, good, missing, expect=1)
    assert result.stderr == f"{missing}: HTTP 404 File not found\n"
    refused = f"http://127.0.0.1:{closed_port}/feed.ics"
    result = imported(series, refused, expect=1)
    assert result.stderr == f"{refused}: cannot fetch: Connection refused\n"
    (root / "page.html").write_text("<html>hello</html>", encoding="utf-8")
    page = f"http://127.0.0.1:{server.server_port}/page.html"
    assert imported(series, page, expect=1).stderr == f"{page}: not an ICS feed (no BEGIN:VCALENDAR)\n"
    assert list((series.parent / "talks").iterdir()) == []


# --- re-imports, other files, dry runs ---------------------------------------------------------

def test_a_second_import_changes_nothing_and_an_update_keeps_added_keys(series, tmp_path):
    feed = tmp_path / "feed.ics"
    feed.write_text(FEED, encoding="utf-8")
    imported(series, feed, SEEDS / "000-hugo-schedule.md")
    folder = series.parent / "talks"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    again = imported(series, feed, SEEDS / "000-hugo-schedule.md")
    assert again.stdout == "0 talks written, 0 updated, 18 unchanged, 13 warnings\n"
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before

    path = folder / "2027-07-01-summer-talk-floating-time.yaml"
    path.write_text(path.read_text() + "online_url: https://zoom.example/j/1\nnotes: Bring tea.\n")
    feed.write_text(FEED.replace("LOCATION:Room 5\\, East Wing", "LOCATION:Room 6")
                    .replace("DTSTART:20270701T100000", "DTSTART:20270702T110000"), encoding="utf-8")
    third = imported(series, feed)
    assert third.stdout == f"updated {path}\n0 talks written, 1 updated, 5 unchanged, 3 warnings\n"
    moved = talk(series, path.stem)  # the same file and id: the talk moved, it was not duplicated
    assert moved.id == "2027-07-01-summer-talk-floating-time"
    assert moved.start.astimezone(UTC) == datetime(2027, 7, 2, 15, 0, tzinfo=UTC)
    assert moved.location == "Room 6"
    assert moved.online_url == "https://zoom.example/j/1" and moved.notes == "Bring tea."
    assert path.read_text().startswith("# Imported by `announcer import`")
    assert not list(folder.glob(".*"))  # no temporary file left behind


def test_a_new_talk_never_takes_the_name_of_one_being_updated(series, tmp_path):
    event = "BEGIN:VEVENT\nUID:{uid}\nDTSTART:20270302T{hour}0000Z\nSUMMARY:Seminar: Ada Lovelace – “{title}”\nEND:VEVENT\n"
    feed = tmp_path / "feed.ics"
    feed.write_text("BEGIN:VCALENDAR\n" + event.format(uid="z@example.org", hour=16, title="One")
                    + "END:VCALENDAR\n", encoding="utf-8")
    imported(series, feed)
    feed.write_text("BEGIN:VCALENDAR\n" + event.format(uid="z@example.org", hour=16, title="One")
                    + event.format(uid="a@example.org", hour=15, title="Zero") + "END:VCALENDAR\n", encoding="utf-8")
    result = imported(series, feed)  # the new talk comes first in time: it gets the next free name
    assert result.stdout.startswith(f"wrote {series.parent / 'talks' / '2027-03-02-lovelace-2.yaml'}\n")
    assert "1 talk written, 0 updated, 1 unchanged" in result.stdout and "left alone" not in result.stderr
    assert talk(series, "2027-03-02-lovelace").title == "One"
    assert talk(series, "2027-03-02-lovelace-2").title == "Zero"


def test_a_file_from_elsewhere_is_left_alone_unless_forced(series):
    path = series.parent / "talks" / "2020-09-08-mukherjee.yaml"
    path.write_text("title: Written by hand\nstart: 2020-09-08 17:00\n")
    result = imported(series, SEEDS / "004-jekyll-talk.md")
    assert f"{path}: exists and is not from {SEEDS / '004-jekyll-talk.md'}:1: left alone (--force replaces it)" \
        in result.stderr
    assert result.stdout.endswith("0 talks written, 0 updated, 0 unchanged, 4 warnings\n")
    assert path.read_text() == "title: Written by hand\nstart: 2020-09-08 17:00\n"
    forced = imported(series, "--force", SEEDS / "004-jekyll-talk.md")
    assert forced.stdout.startswith(f"wrote {path}\n")
    assert talk(series, path.stem).title == "Mathematics of Neural Networks"


def test_dry_run_prints_the_files_and_writes_nothing(series):
    result = imported(series, "--dry-run", SEEDS / "002-department.ics")
    target = series.parent / "talks" / "2019-11-05-mahoney.yaml"
    assert result.stdout.startswith(f"# {target} (new)\n# Imported by `announcer import`")
    assert "id: 2019-11-05-mahoney\n" in result.stdout and "start: 2019-11-05 10:45\n" in result.stdout
    assert result.stdout.endswith("1 talk would be written, 0 updated, 0 unchanged, 5 warnings (dry run)\n")
    assert not target.exists()


def test_into_writes_to_another_folder(series, tmp_path):
    imported(series, "--into", tmp_path / "elsewhere", SEEDS / "004-jekyll-talk.md")
    assert (tmp_path / "elsewhere" / "2020-09-08-mukherjee.yaml").exists()
    assert list((series.parent / "talks").iterdir()) == []


# --- pages with front matter -----------------------------------------------------------------

def test_a_hugo_page_with_body_as_abstract_keys_in_any_case_and_a_bare_youtube_id(series, tmp_path):
    page = tmp_path / "talk.md"
    page.write_text(textwrap.dedent("""\
        +++
        Title = "Sparse Recovery"
        Speaker = "Lenka Zdeborová (EPFL)"
        DATE = 2027-05-04T15:30:00+02:00
        Room = "Room 12"
        Video = "AQKgBk8HDI4"
        Slides = "/files/slides.pdf"
        draft = true
        +++

        We study *sparse* recovery.

        Second paragraph.
        """), encoding="utf-8")
    result = imported(series, page)
    zdeborova = talk(series, "2027-05-04-zdeborova")
    assert zdeborova.start.astimezone(UTC) == datetime(2027, 5, 4, 13, 30, tzinfo=UTC)
    assert (zdeborova.speakers[0].name, zdeborova.speakers[0].affiliation) == ("Lenka Zdeborová", "EPFL")
    assert zdeborova.location == "Room 12"
    assert zdeborova.abstract == "We study *sparse* recovery.\n\nSecond paragraph."
    assert dict(zdeborova.links) == {"video": "https://www.youtube.com/watch?v=AQKgBk8HDI4"}
    assert result.stderr.splitlines() == [f"{page}:7: Slides not imported: '/files/slides.pdf' is not an http(s) link",
                                          f"{page}:8: draft not imported"]
    assert data(series, "2027-05-04-zdeborova")["source_uid"] == str(page)


def test_an_html_page_gives_its_text_as_the_abstract(series, tmp_path):
    page = tmp_path / "talk.html"
    page.write_text(textwrap.dedent("""\
        ---
        title: Random Matrices
        speakers:
          - name: Ada Lovelace
            affiliation: Analytical Engines
          - Charles Babbage
        date: 2027-04-06 14:30
        ---
        <p>We count <b>eigenvalues</b> &amp; more.</p>
        <script>track()</script>
        <p>Second paragraph.</p>
        """), encoding="utf-8")
    imported(series, page)
    lovelace = talk(series, "2027-04-06-lovelace")
    assert [(s.name, s.affiliation) for s in lovelace.speakers] == [("Ada Lovelace", "Analytical Engines"),
                                                                      ("Charles Babbage", None)]
    assert lovelace.abstract == "We count eigenvalues & more.\n\nSecond paragraph."


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    ("BEGIN:VCALENDAR\nVERSION:2.0\nthis is not a calendar\nEND:VCALENDAR\n",
     "3: not an iCalendar line: 'this is not a calendar'"),
    ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nDTSTART:tomorrow\nEND:VEVENT\nEND:VCALENDAR\n",
     "4: DTSTART is not a valid date or time"),
    ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nDTSTART:20270101T100000Z\n",
     "2: BEGIN:VEVENT is never ended"),
    ("just some text\n", "1: not an ICS calendar (BEGIN:VCALENDAR) or a page with front matter"),
    ("---\ntitle: [unclosed\n---\n", "3: not valid YAML front matter"),
    ("+++\ntitle = \n+++\n", "2: not valid TOML front matter"),
])
def test_garbage_is_one_line_exit_1_and_nothing_is_written(series, tmp_path, content, message):
    bad = tmp_path / "bad.ics"
    bad.write_text(content, encoding="utf-8")
    result = imported(series, SEEDS / "004-jekyll-talk.md", bad, expect=1)
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{bad}:{message}")
    assert result.stdout == ""
    assert list((series.parent / "talks").iterdir()) == []


def test_unreadable_and_binary_files(series, tmp_path):
    missing = tmp_path / "missing.ics"
    assert imported(series, missing, expect=1).stderr == f"{missing}: cannot read: No such file or directory\n"
    binary = tmp_path / "binary.ics"
    binary.write_bytes(b"BEGIN:VCALENDAR\n\xff\xfe\x00")
    assert imported(series, binary, expect=1).stderr == f"{binary}:2: not UTF-8 text (byte 0xff)\n"


def test_description_labels_split_only_where_they_run_together():
    from announcer.importers.ics import read_calendar

    text = ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nDTSTART:20270101T150000Z\nSUMMARY:A talk\n"
            "DESCRIPTION:An Abstract idea about Bio statistics. No labels here.\nEND:VEVENT\nEND:VCALENDAR\n")
    from zoneinfo import ZoneInfo
    result = read_calendar(text, "x.ics", ZoneInfo("UTC"), datetime(2027, 1, 1, tzinfo=UTC))
    assert result.talks[0].data["abstract"] == "An Abstract idea about Bio statistics. No labels here."


def test_a_location_in_the_description_that_differs_from_location_is_reported():
    from zoneinfo import ZoneInfo

    from announcer.importers.ics import read_calendar

    text = ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nDTSTART:20270101T150000Z\nLOCATION:Room 2\n"
            "DESCRIPTION:LocationRoom 1AbstractWe talk.\nEND:VEVENT\nEND:VCALENDAR\n")
    result = read_calendar(text, "x.ics", ZoneInfo("UTC"), datetime(2027, 1, 1, tzinfo=UTC))
    assert result.talks[0].data["location"] == "Room 2" and result.talks[0].data["abstract"] == "We talk."
    assert [str(note) for note in result.notes] == [
        "x.ics:6: DESCRIPTION's location not imported (LOCATION gives the room): 'Room 1'"]


def test_events_without_uid_are_told_apart_by_their_place():
    from zoneinfo import ZoneInfo

    from announcer.importers.ics import read_calendar

    event = "BEGIN:VEVENT\nDTSTART:2027010{day}T150000Z\nSUMMARY:Talk {day}\nEND:VEVENT\n"
    text = "BEGIN:VCALENDAR\n" + event.format(day=1) + event.format(day=2) + "END:VCALENDAR\n"
    result = read_calendar(text, "x.ics", ZoneInfo("UTC"), datetime(2027, 1, 1, tzinfo=UTC))
    assert [(t.source_uid, t.data["title"]) for t in result.talks] == [("x.ics#2", "Talk 1"), ("x.ics#6", "Talk 2")]


def test_help_does_not_load_the_importers():
    code = "import sys, announcer.cli; print(sorted(m for m in sys.modules if 'ical' in m or 'importers' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
