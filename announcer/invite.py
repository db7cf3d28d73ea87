"""The ICS invite for a talk (SPEC 4.2): one VEVENT, times in UTC, built with icalendar."""

from __future__ import annotations

from datetime import datetime, timezone

from announcer.config import Config
from announcer.render import markdown_text, when
from announcer.talks import Talk

PRODID = "-//announcer//announcer//EN"  # no version: a release would change every invite
METHODS = ("PUBLISH", "CANCEL")
_STATUS = {"confirmed": "CONFIRMED", "tentative": "TENTATIVE", "cancelled": "CANCELLED"}


def talk_uid(talk: Talk, domain: str) -> str:
    """The talk's UID: from its id and the series domain only, so every message carries the same."""
    return f"{talk.id}@{domain}"


def summary(talk: Talk, series_name: str) -> str:
    """"Jeffrey Pennington: Dynamical Isometry ...", or the series' name when no speaker is known."""
    who = ", ".join(s.name for s in talk.speakers) or series_name
    return f"{who}: {talk.title or 'TBA'}"


def description(config: Config, talk: Talk, cancelled: bool = False) -> str:
    """The talk in plain text, with its links, for DESCRIPTION."""
    lines = ["CANCELLED"] if cancelled else []
    lines += [talk.speaker_line, talk.title or "TBA", "", when(talk)]
    lines += [value for value in (talk.location, talk.notes) if value]
    if talk.online_url:
        lines.append(f"Online: {talk.online_url}")
    if talk.abstract:
        lines += ["", markdown_text(talk.abstract, width=0)]
    links = [(name.capitalize(), url) for name, url in talk.links]
    if talk.url:
        links.append(("Talk page", talk.url))
    if config.series.url:
        links.append((config.series.name, config.series.url))
    if links:
        lines += ["", *(f"{name}: {url}" for name, url in links)]
    return "\n".join(lines)


def build_invite(config: Config, talk: Talk, *, method: str, sequence: int, now: datetime) -> bytes:
    """The calendar for one talk: METHOD PUBLISH, or CANCEL with STATUS:CANCELLED.

    A new value from the talk or the series here must be counted in message.size_bound too.
    """
    from icalendar import Calendar, Event, vCalAddress  # a heavy import: only when building

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    calendar = Calendar()  # not Calendar.new(): that adds a calendar UID and its own PRODID
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)

    event = Event()
    event.add("uid", talk_uid(talk, config.series.domain))
    event.add("sequence", sequence)
    event.add("dtstamp", now.astimezone(timezone.utc).replace(microsecond=0))
    # UTC, not TZID + VTIMEZONE: clients misread icalendar's RDATE-list VTIMEZONEs (SPEC 4.2).
    event.add("dtstart", talk.start.astimezone(timezone.utc))
    event.add("dtend", talk.end.astimezone(timezone.utc))
    event.add("summary", summary(talk, config.series.name))
    if talk.location:
        event.add("location", talk.location)
    event.add("description", description(config, talk, cancelled=method == "CANCEL"))
    if talk.url or config.series.url:
        event.add("url", talk.url or config.series.url)
    event.add("status", "CANCELLED" if method == "CANCEL" else _STATUS.get(talk.status, "CONFIRMED"))
    sender = config.mail.sender
    organizer = vCalAddress(f"mailto:{sender.addr_spec}")
    organizer.params["CN"] = sender.display_name or config.series.name
    event.add("organizer", organizer)
    calendar.add_component(event)
    return calendar.to_ical()
