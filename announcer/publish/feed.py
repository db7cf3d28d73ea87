"""The series as one subscribable calendar (SPEC 8.2): every talk's VEVENT exactly as its invite
carries it, cancelled ones included (so that subscribed calendars drop them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from announcer.compose.invite import PRODID, build_event
from announcer.plan import Announced, invite_sequence
from announcer.sources.config import Config
from announcer.sources.talk import Talk

FEED_NAME = "series.ics"
REFRESH = timedelta(hours=1)  # how often a subscribed calendar should look again


def build_feed(config: Config, talks: list[Talk], announced: dict[str, Announced], now: datetime) -> bytes:
    """The feed: METHOD:PUBLISH, the series' name, a refresh hint, and one VEVENT a talk, by start.

    Each event's SEQUENCE is the one the talk's invite carries now (plan.invite_sequence), from
    the facts the ledger says were announced.
    """
    from icalendar import Calendar, vDuration  # a heavy import: only when building

    calendar = Calendar()  # not Calendar.new(): that adds a calendar UID and its own PRODID
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", config.series.name)
    # RFC 7986 asks for VALUE=DURATION spelled out; X-PUBLISHED-TTL is Outlook's older name for it.
    calendar.add("refresh-interval", vDuration(REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))
    for talk in sorted(talks, key=lambda t: (t.start, t.id)):
        calendar.add_component(build_event(config, talk, sequence=invite_sequence(talk, announced.get(talk.id)),
                                           now=now, cancelled=talk.status == "cancelled"))
    return calendar.to_ical()
