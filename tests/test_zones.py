"""Several zones (SPEC 8.2): `[series] also_show` in every message, the invite and the page."""

from __future__ import annotations

import email
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar
from typer.testing import CliRunner

from announcer.cli import app
from announcer.compose.invite import build_invite
from announcer.compose.render import Renderer
from announcer.compose.wording import elsewhere

from conftest import write_config
from series_files import load_mad_talks

runner = CliRunner()
ZONES = 'also_show = ["Europe/London", "Asia/Kolkata"]\n'
LATE = """\
title: Late Talk
speaker: Ada Lovelace
start: 2027-02-21 22:00
"""
AFTERNOON = LATE.replace("22:00", "14:00")


def test_elsewhere_names_the_day_only_where_it_differs():
    zones = (ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata"))
    afternoon = datetime(2027, 2, 21, 14, 0, tzinfo=ZoneInfo("America/New_York"))
    assert elsewhere(afternoon, zones) == "19:00 GMT · 00:30 IST, Mon 22 Feb"
    late = datetime(2027, 2, 21, 22, 0, tzinfo=ZoneInfo("America/New_York"))
    assert elsewhere(late, zones) == "03:00 GMT, Mon 22 Feb · 08:30 IST, Mon 22 Feb"
    # Summer time in both New York and London; an earlier day to the west.
    summer = datetime(2027, 7, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert elsewhere(summer, (ZoneInfo("Europe/London"), ZoneInfo("Pacific/Honolulu"))) == \
        "14:00 BST · 03:00 HST"
    assert elsewhere(summer, (ZoneInfo("Pacific/Pago_Pago"),)) == "02:00 SST"
    assert elsewhere(datetime(2027, 7, 1, 1, 0, tzinfo=ZoneInfo("America/New_York")),
                     (ZoneInfo("Pacific/Honolulu"),)) == "19:00 HST, Wed 30 Jun"
    assert elsewhere(summer, ()) == ""


def test_every_message_gives_the_time_in_the_other_zones(tmp_path):
    config, talks = load_mad_talks(tmp_path, LATE, extra=ZONES)
    renderer = Renderer(config)
    for kind in ("announcement", "reminder", "update", "cancellation"):
        rendered = renderer.render(talks[0], kind)
        assert ("When:     Sunday 21 February 2027, 10:00-11:00 pm EST\n"
                "          03:00 GMT, Mon 22 Feb · 08:30 IST, Mon 22 Feb\n") in rendered.text, kind
        assert ("<strong>When:</strong> Sunday 21 February 2027, 10:00-11:00 pm EST · "
                "03:00 GMT, Mon 22 Feb · 08:30 IST, Mon 22 Feb<br>") in rendered.html, kind


def test_without_also_show_the_when_line_is_as_before(tmp_path):
    config, talks = load_mad_talks(tmp_path, AFTERNOON)
    rendered = Renderer(config).render(talks[0], "announcement")
    assert "When:     Sunday 21 February 2027, 2:00-3:00 pm EST\n" in rendered.text
    assert "GMT" not in rendered.text + rendered.html


def test_the_invite_description_gives_the_other_zones(tmp_path):
    config, talks = load_mad_talks(tmp_path, AFTERNOON, extra=ZONES)
    data = build_invite(config, talks[0], method="PUBLISH", sequence=0, now=datetime(2027, 2, 14, 14, 0,
                                                                                      tzinfo=ZoneInfo("UTC")))
    event = Calendar.from_ical(data).walk("VEVENT")[0]
    assert "Sunday 21 February 2027, 2:00-3:00 pm EST · 19:00 GMT · 00:30 IST, Mon 22 Feb" in \
        str(event["DESCRIPTION"]).splitlines()


def test_the_page_gives_the_other_zones(tmp_path):
    config = write_config(tmp_path, series={"also_show": ["Europe/London", "Asia/Kolkata"]})
    (tmp_path / "talks" / "late.yaml").write_text(LATE, encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "site", "--out", str(tmp_path / "site"),
                                 "--now", "2027-02-01T12:00Z"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert '<br><span class="zone">03:00 GMT, Mon 22 Feb · 08:30 IST, Mon 22 Feb</span></td>' in page
    assert '<span class="elsewhere">· 03:00 GMT, Mon 22 Feb · 08:30 IST, Mon 22 Feb</span>' in page


def test_a_sent_message_carries_the_zones(tmp_path):
    config = write_config(tmp_path, series={"also_show": ["Asia/Kolkata"]})
    (tmp_path / "talks" / "late.yaml").write_text(LATE, encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "send", "--due", "--now", "2027-02-14T09:00-05:00"])
    assert result.exit_code == 0, result.output
    [path] = (tmp_path / "outbox" / "new").iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "When:     Sunday 21 February 2027, 10:00-11:00 pm EST\r\n          08:30 IST, Mon 22 Feb\r\n" in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "10:00-11:00 pm EST · 08:30 IST, Mon 22 Feb<br>" in html


def test_also_show_must_name_iana_zones(tmp_path):
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('[mail]', 'also_show = ["Europe/London", "Mars/Olympus"]\n\n[mail]'),
                      encoding="utf-8")
    line = config.read_text(encoding="utf-8").splitlines().index(
        'also_show = ["Europe/London", "Mars/Olympus"]') + 1
    result = runner.invoke(app, ["--config", str(config), "check"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f'{config}:{line}: "also_show": unknown timezone \'Mars/Olympus\': use an IANA name such as '
        '"America/New_York"']
    config.write_text(text.replace('[mail]', 'also_show = "Europe/London"\n\n[mail]'), encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "check"])
    assert result.exit_code == 1
    assert f'{config}:{line}: "also_show": write a list of IANA zone names' in result.stderr
    assert "Traceback" not in result.output


