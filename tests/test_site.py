"""`announcer site`: the schedule page, checked as HTML and in a real headless Chromium."""

import html.parser
import http.server
import textwrap
import threading
from functools import partial

import pytest
from typer.testing import CliRunner

from announcer.cli import app

from browser import Browser
from conftest import write_config

runner = CliRunner()
NOW = "2027-04-02T14:00:00Z"
LONG_LINK = "https://zoom.example/j/98765432109876543210?pwd=" + "averyverylongtokenwithoutanyplacetobreak" * 2
TALKS = {
    "2027-04-08-hanin": f"""\
        title: Deep Learning in the Mean-Field Regime
        speaker:
          name: Boris Hanin
          affiliation: Princeton
          url: https://example.org/hanin
          bio: Boris Hanin works on *deep networks* at Princeton. ![](//cdn.example.org/face.jpg)
        start: 2027-04-08 15:30
        location: Eck 206, Warren Weaver Hall, 251 Mercer Street
        online_url: {LONG_LINK}
        notes: Coffee at 3:15 pm in the common room.
        abstract: |
          Wide networks behave like **kernel methods**; deep ones need not.

          - a list item with [a link](https://example.org/paper)
          - `code` and an image: ![the diagram](https://images.example.org/diagram.png)

          <img src="https://tracker.example/pixel.gif"> raw HTML stays text.
        links:
          slides: https://example.org/slides.pdf
          video: https://www.youtube.com/watch?v=AQKgBk8HDI4
        url: https://example.org/talks/hanin
        """,
    "2027-04-15-slot": "start: 2027-04-15 14:00\n",
    "2027-04-22-el-alaoui": "speaker: {name: Ahmed El Alaoui, affiliation: Stanford}\nstart: 2027-04-22 14:00\n",
    "2027-04-29-maybe": "title: A Talk Not Yet Confirmed\nspeaker: Lenka Zdeborová\nstart: 2027-04-29 14:00\n"
                        "status: tentative\n",
    "2027-05-06-off": "title: A Talk That Will Not Happen\nspeaker: A. Nobody\nstart: 2027-05-06 14:00\n"
                      "status: cancelled\n",
    "2027-05-13-tricky": "title: 'Attention <script>alert(1)</script> & Supercalifragilisticexpialidociousness'\n"
                         "speaker: {name: 'Ann <b>Bold</b>', affiliation: 'R&D \"Lab\"'}\nstart: 2027-05-13 14:00\n",
    "2027-02-21-pennington": "title: Dynamical Isometry\nspeaker: {name: Jeffrey Pennington, affiliation: Google}\n"
                             "start: 2027-02-21 14:00\n",
    "2027-03-16-older": "title: Random Matrix Theory\nspeaker: Jeffrey Pennington\nstart: 2027-03-16 14:00\n",
    "2026-11-03-oldest": "title: Last Year\nspeaker: Someone Earlier\nstart: 2026-11-03 11:00\n",
}
UPCOMING = ["2027-04-08-hanin", "2027-04-15-slot", "2027-04-22-el-alaoui", "2027-04-29-maybe", "2027-05-06-off",
            "2027-05-13-tricky"]
PAST = ["2027-03-16-older", "2027-02-21-pennington", "2026-11-03-oldest"]


class Page(html.parser.HTMLParser):
    """What a test needs from index.html: tags with their attributes, in order, and the text."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def ids(self, tag):
        return [attrs["id"] for name, attrs in self.tags if name == tag and "id" in attrs]


def make_series(tmp_path, **series):
    config = write_config(tmp_path, series={"subscribe_url": "https://lists.example.org/listinfo/seminar",
                                            "url": "https://example.org/seminar/", **series})
    for name, text in TALKS.items():
        (tmp_path / "talks" / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return config


def build(tmp_path, *extra, **series):
    config = make_series(tmp_path, **series)
    result = runner.invoke(app, ["--config", str(config), "site", "--out", str(tmp_path / "site"), "--now", NOW,
                                 *map(str, extra)])
    return config, result


@pytest.fixture
def site(tmp_path):
    config, result = build(tmp_path)
    assert result.exit_code == 0, result.output
    return tmp_path / "site"


def test_site_writes_the_page_and_the_feed_beside_it(tmp_path, monkeypatch):
    config = make_series(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["--config", str(config), "site", "--now", NOW])
    assert result.exit_code == 0, result.output
    assert result.stdout == "wrote site/index.html\nwrote site/series.ics\n"
    feed = runner.invoke(app, ["--config", str(config), "calendar", "--now", NOW]).stdout_bytes
    assert (tmp_path / "site" / "series.ics").read_bytes() == feed
    result = runner.invoke(app, ["--config", str(config), "site", "--out", "public", "--now", NOW])
    assert sorted(p.name for p in (tmp_path / "public").iterdir()) == ["index.html", "series.ics"]


def test_upcoming_talks_in_a_table_and_every_talks_details_under_its_id(site):
    page = Page((site / "index.html").read_text(encoding="utf-8"))
    rows = [attrs["href"] for name, attrs in page.tags if name == "a" and attrs.get("href", "").startswith("#")]
    assert rows == [f"#{talk_id}" for talk_id in UPCOMING]
    assert page.ids("article") == UPCOMING + PAST  # upcoming soonest first, then past talks newest first
    text = (site / "index.html").read_text(encoding="utf-8")
    body = text.split("<tbody>")[1].split("</tbody>")[0]
    row = {talk_id: next(r for r in body.split("<tr")[1:] if f'href="#{talk_id}"' in r) for talk_id in UPCOMING}
    slot_speaker, slot_title = row["2027-04-15-slot"].split('<td class="title">')
    assert '<span class="tba">TBA</span>' in slot_speaker and 'class="tba"><span class="struck">TBA<' in slot_title
    assert 'class="tba"><span class="struck">TBA<' in row["2027-04-22-el-alaoui"]
    assert "Ahmed El Alaoui" in row["2027-04-22-el-alaoui"] and "(Stanford)" in row["2027-04-22-el-alaoui"]
    assert "Tentative" in row["2027-04-29-maybe"] and "Cancelled" in row["2027-05-06-off"]
    assert "Sun 8 Apr" not in text and "Thu 8 Apr" in row["2027-04-08-hanin"] and "3:30 pm" in row["2027-04-08-hanin"]
    assert '<tr class="cancelled">' in text and '<article class="talk tentative" id="2027-04-29-maybe">' in text
    details = text.split('id="2027-04-08-hanin"')[1].split("</article>")[0]
    for expected in ("<strong>kernel methods</strong>", "<em>deep networks</em>", "Coffee at 3:15 pm",
                     "Eck 206, Warren Weaver Hall", f'href="{LONG_LINK}"', 'href="https://example.org/slides.pdf">Slides',
                     ">Video</a>", 'href="https://example.org/talks/hanin">Talk page', "Thursday 8 April 2027, 3:30-4:30 pm EDT"):
        assert expected in details
    assert 'href="series.ics"' in text and 'href="https://lists.example.org/listinfo/seminar"' in text


def test_talk_fields_are_escaped_and_nothing_is_loaded_from_elsewhere(site):
    text = (site / "index.html").read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "Attention &lt;script&gt;alert(1)&lt;/script&gt; &amp; Supercalifragilisticexpialidociousness" in text
    assert "Ann &lt;b&gt;Bold&lt;/b&gt;" in text and "R&amp;D &#34;Lab&#34;" in text
    assert '<p>&lt;img src="https://tracker.example/pixel.gif"&gt; raw HTML stays text.</p>' in text
    # The abstract's remote image is a link to it, not an image the page would load.
    assert '<a href="https://images.example.org/diagram.png">the diagram</a>' in text
    assert '<a href="//cdn.example.org/face.jpg">image</a>' in text
    page = Page(text)
    loaded = [(name, attrs) for name, attrs in page.tags
              if "src" in attrs or (name == "link" and attrs.get("rel") != "alternate")]
    assert loaded == []
    assert "url(" not in text and "@import" not in text
    csp = next(attrs["content"] for name, attrs in page.tags if attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp


def test_site_templates_are_overridable_from_templates_dir(tmp_path):
    (tmp_path / "custom" / "site").mkdir(parents=True)
    (tmp_path / "custom" / "site" / "_row.html.j2").write_text(
        '<tr><td><a href="#{{ entry.anchor }}">{{ entry.talk.title or "To be announced" }}</a></td></tr>\n')
    config, result = build(tmp_path, templates_dir="custom")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert text.count("To be announced") == 2 and 'class="tba">TBA</span>' not in text
    assert 'id="2027-04-08-hanin"' in text  # the other built-in partials still serve
    (tmp_path / "custom" / "site" / "_row.html.j2").write_text("<tr>\n{{ entry.nothing.here }}\n</tr>\n")
    result = runner.invoke(app, ["--config", str(config), "site", "--out", str(tmp_path / "site"), "--now", NOW])
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert result.output.startswith(f"{tmp_path / 'custom' / 'site' / '_row.html.j2'}:2: template error")


# ---- in a real browser ------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the server's log is the test's list, not stderr
        self.server.requests.append((self.headers.get("Host"), self.path))


@pytest.fixture
def served(site):
    """The site folder on a loopback HTTP server; yields its origin and the requests it saw."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(site)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser(chromium):
    with Browser(chromium) as running:
        yield running


MEASURE = """(() => {
  const width = innerWidth;
  const outside = [...document.querySelectorAll('body *')].filter(element => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && (box.right > width + 0.5 || box.left < -0.5);
  }).map(element => element.tagName + ' ' + element.textContent.slice(0, 40));
  const rows = IDS.map(id => {
    const link = document.querySelector('tbody a[href="#' + id + '"]');
    if (!link) return null;
    const box = link.getBoundingClientRect(), style = getComputedStyle(link);
    return {id, visible: box.width > 0 && box.height > 0 && box.left >= 0 && box.right <= width
                         && style.visibility !== 'hidden' && style.display !== 'none',
            row: link.closest('tr').innerText};
  });
  return {scrollWidth: document.documentElement.scrollWidth, width, outside, rows,
          scripts: document.scripts.length, anchors: ALL.filter(id => document.getElementById(id)).length};
})()"""


@pytest.mark.parametrize("width", [375, 1024])
def test_the_page_in_chromium_fits_the_screen_and_loads_nothing_remote(browser, served, width, tmp_path):
    origin, requests = served
    page = browser.open_page(f"{origin}/index.html", width)
    result = page.evaluate(MEASURE.replace("IDS", repr(UPCOMING)).replace("ALL", repr(UPCOMING + PAST)))
    assert result["width"] == width
    assert result["scrollWidth"] <= result["width"], result["outside"]
    assert result["outside"] == []
    assert [row and row["visible"] for row in result["rows"]] == [True] * len(UPCOMING), result["rows"]
    assert "Ahmed El Alaoui (Stanford)" in result["rows"][2]["row"] and "TBA" in result["rows"][1]["row"]
    assert result["scripts"] == 0 and result["anchors"] == len(UPCOMING + PAST)
    page.send("Page.navigate", {"url": f"{origin}/index.html#2027-04-29-maybe"})
    assert page.evaluate("document.querySelector(':target').id") == "2027-04-29-maybe"

    shot = page.screenshot(tmp_path / f"site-{width}.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(shot.read_bytes()[16:20], "big") == width
    print(f"screenshot: {shot}")

    assert requests and all(host == origin.removeprefix("http://") and path.startswith("/")
                            for host, path in requests), requests
    assert ("/index.html" in {path for _, path in requests})
    assert [url for url in page.requested_urls() if not url.startswith(origin + "/")] == []
    page.send("Page.close")
