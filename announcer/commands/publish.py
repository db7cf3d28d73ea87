"""`calendar` and `site`: the series published as a feed and as a schedule page (SPEC 8.2)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from announcer.deliver.ledger import open_ledger
from announcer.plan import Announced
from announcer.publish.feed import build_feed
from announcer.publish.output import write_atomically
from announcer.publish.site import build_site
from announcer.sources.config import Config
from announcer.sources.series import load_series
from announcer.sources.timing import parse_now

SITE_DIR = Path("site")


def announced_facts(config: Config) -> dict[str, Announced]:
    """What the ledger says the list heard of each talk (nothing before the first send)."""
    with open_ledger(config, write=False) or nullcontext() as ledger:
        return ledger.announced() if ledger else {}


def calendar_command(config_option: str | None, out: Path | None, now_text: str | None) -> tuple[bytes, str | None]:
    """The feed's bytes for stdout, or (b"", "wrote FILE") once written to `out`."""
    loaded = load_series(config_option)
    feed = build_feed(loaded.config, loaded.talks, announced_facts(loaded.config), parse_now(now_text))
    if out is None:
        return feed, None
    write_atomically(out, feed)
    return b"", f"wrote {out}"


def site_command(config_option: str | None, out: Path | None, now_text: str | None) -> str:
    """Write index.html and series.ics into `out` (default site/); the lines saying so."""
    loaded = load_series(config_option)
    out = SITE_DIR if out is None else out
    files = build_site(loaded.config, loaded.talks, announced_facts(loaded.config), parse_now(now_text))
    for name, data in files.items():
        write_atomically(out / name, data)
    return "".join(f"wrote {out / name}\n" for name in files)
