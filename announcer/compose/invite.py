"""The ICS invite for a talk (SPEC 4.2): one VEVENT (one a session for a course post), times in UTC."""

from __future__ import annotations

from datetime import datetime, timezone

from announcer.compose.fill import paragraphs
from announcer.compose.markdown import markdown_text
from announcer.compose.wording import elsewhere, when
from announcer.sources.config import Config
from announcer.sources.talk import Talk

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
    also = elsewhere(talk.start.astimezone(talk.timezone), config.series.also_show)
    lines += [talk.speaker_line, talk.title or "TBA", "", when(talk) + (f" · {also}" if also else "")]
    lines += [talk.location] if talk.location else []
    lines += paragraphs(talk.notes) if talk.notes else []
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


def invite_texts(config: Config, talk: Talk, method: str) -> dict[str, str]:
    """The invite's values that come from the talk or the series, by property (and CN).

    build_invite writes these and message.size_bound counts them: one list for both.
    """
    sender = config.mail.sender
    texts = {"uid": talk_uid(talk, config.series.domain), "summary": summary(talk, config.series.name),
             "location": talk.where or "",
             "description": description(config, talk, cancelled=method == "CANCEL"),
             "url": talk.url or config.series.url or "",
             "organizer": f"mailto:{sender.addr_spec}", "cn": sender.display_name or config.series.name}
    return {name: text for name, text in texts.items() if text}


def build_event(config: Config, talk: Talk, *, sequence: int, now: datetime, cancelled: bool = False):
    """The talk's VEVENT (an icalendar Event), as its invites and the series feed carry it.

    cancelled: STATUS:CANCELLED and "CANCELLED" opening the description, as in a cancellation.
    """
    from icalendar import Event, vCalAddress  # a heavy import: only when building

    texts = invite_texts(config, talk, "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    event.add("uid", texts["uid"])
    event.add("sequence", sequence)
    event.add("dtstamp", now.astimezone(timezone.utc).replace(microsecond=0))
    # UTC, not TZID + VTIMEZONE: clients misread icalendar's RDATE-list VTIMEZONEs (SPEC 4.2).
    event.add("dtstart", talk.start.astimezone(timezone.utc))
    event.add("dtend", talk.end.astimezone(timezone.utc))
    for name in ("summary", "location", "description", "url"):
        if name in texts:
            event.add(name, texts[name])
    event.add("status", "CANCELLED" if cancelled else _STATUS.get(talk.status, "CONFIRMED"))
    organizer = vCalAddress(texts["organizer"])
    organizer.params["CN"] = texts["cn"]
    event.add("organizer", organizer)
    return event


def build_invite(config: Config, talk: Talk, *, method: str, sequence: int, now: datetime,
                 sequences: tuple[int, ...] = ()) -> bytes:
    """The calendar for one talk: METHOD PUBLISH, or CANCEL with STATUS:CANCELLED.

    A course post's calendar holds one event per session (SPEC 8.5), each the session's own (its
    UID, its SEQUENCE from `sequences`), as the session's own messages carry it.
    """
    from icalendar import Calendar  # a heavy import: only when building

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    calendar = Calendar()  # not Calendar.new(): that adds a calendar UID and its own PRODID
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    if talk.sessions:
        for session, session_sequence in zip(talk.sessions, sequences or (0,) * len(talk.sessions)):
            calendar.add_component(build_event(config, session, sequence=session_sequence, now=now))
    else:
        calendar.add_component(build_event(config, talk, sequence=sequence, now=now, cancelled=method == "CANCEL"))
    return calendar.to_ical()
