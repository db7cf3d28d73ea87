"""The series' schedule page (SPEC 8.2): index.html from the site templates, series.ics beside it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup

from announcer.compose.markdown import markdown_html
from announcer.compose.render import Renderer
from announcer.plan import Announced
from announcer.publish.feed import FEED_NAME, build_feed
from announcer.sources.config import Config
from announcer.sources.talk import Talk

INDEX = "site/index.html.j2"  # overridable as templates_dir/site/index.html.j2 (and its partials)
# An image as markdown_html writes it, when its address is on another host (absolute or "//host").
_REMOTE_IMAGE = re.compile(r'<img src="((?:[a-z]+:)?//[^"]*)" alt="([^"]*)"(?: title="[^"]*")? />', re.IGNORECASE)


def page_markdown(source: str | None) -> Markup:
    """markdown_html for the page, which loads nothing from elsewhere: an image on another host
    becomes a link to it (its description as the text). Attributes come out escaped already."""
    html = markdown_html(source)
    return Markup(_REMOTE_IMAGE.sub(lambda m: f'<a href="{m[1]}">{m[2] or "image"}</a>', html))


@dataclass(frozen=True)
class Entry:
    """A talk as the page shows it: its start and end in its own zone, and whether it has passed."""

    talk: Talk
    start: datetime
    end: datetime
    past: bool

    @property
    def anchor(self) -> str:
        """The id of the talk's details on the page (talk ids are letters, digits, ., _ and -)."""
        return self.talk.id


def entries(talks: list[Talk], now: datetime) -> tuple[list[Entry], list[Entry]]:
    """The upcoming talks, soonest first (one still under way counts), and the past ones, newest first."""
    made = [Entry(t, t.start.astimezone(t.timezone), t.end.astimezone(t.timezone), t.end <= now) for t in talks]
    upcoming = sorted((e for e in made if not e.past), key=lambda e: (e.talk.start, e.talk.id))
    past = sorted((e for e in made if e.past), key=lambda e: (e.talk.start, e.talk.id), reverse=True)
    return upcoming, past


def build_site(config: Config, talks: list[Talk], announced: dict[str, Announced], now: datetime,
               renderer: Renderer | None = None) -> dict[str, bytes]:
    """The site's files by name: index.html and the feed it links to."""
    upcoming, past = entries(talks, now)
    context = {"series": config.series, "upcoming": upcoming, "past": past, "feed": FEED_NAME,
               "now": now.astimezone(config.series.timezone),
               "page_markdown": page_markdown}
    page = (renderer or Renderer(config)).render_page(INDEX, context)
    return {"index.html": page.encode("utf-8"), FEED_NAME: build_feed(config, talks, announced, now)}
