"""A talk as announcer knows it: frozen values, loaded and checked by talks.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

STATUSES = ("confirmed", "tentative", "cancelled")


@dataclass(frozen=True)
class Speaker:
    name: str
    affiliation: str | None = None
    url: str | None = None
    bio: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.affiliation})" if self.affiliation else self.name


@dataclass(frozen=True)
class Course:
    """A several-talk file with `announce: together`: its sessions are announced in one post (SPEC 8.5).

    Its fields are the file's top-level ones (the defaults of its sessions): the course's name,
    speakers, and what the post shows after the list of sessions.
    """

    id: str                  # the file's stem: the course post's TALK in plan, preview and send
    title: str
    speakers: tuple[Speaker, ...]
    abstract: str | None
    notes: str | None
    links: tuple[tuple[str, str], ...]
    url: str | None
    path: Path
    line: int


@dataclass(frozen=True)
class Talk:
    """One talk, validated: times are aware and exist; text fields bound for headers are one line."""

    id: str
    title: str | None
    speakers: tuple[Speaker, ...]
    start: datetime
    end: datetime
    timezone: ZoneInfo
    location: str | None
    online_url: str | None
    abstract: str | None
    notes: str | None
    links: tuple[tuple[str, str], ...]
    status: str
    url: str | None
    path: Path
    line: int
    online_only: bool = False   # `location: online`, null or "": no room, not even the series' default
    new_talk: bool = False   # not a rename of an announced talk with the same speaker and title (SPEC 8.5)
    course: Course | None = None   # a session of a course announced in one post
    sessions: tuple[Talk, ...] = ()   # a course post (see course_posts): its sessions, soonest first

    @property
    def is_tba(self) -> bool:
        return self.title is None

    @property
    def is_placeholder(self) -> bool:
        """An empty slot of a schedule: neither speaker nor title. Planned, listed, never mailed."""
        return self.title is None and not self.speakers

    @property
    def where(self) -> str | None:
        """The room; for an online-only talk its link ("Online" until it has one) (SPEC 8.5)."""
        return self.location or self.online_url or ("Online" if self.online_only else None)

    @property
    def speaker_line(self) -> str:
        """Speakers as one line: "Jeffrey Pennington (Google), Lenka Zdeborová (EPFL)"."""
        return ", ".join(str(s) for s in self.speakers) or "Speaker TBA"

    @property
    def own_notes(self) -> str | None:
        """A course session's notes without the course's (which its notes end with), else its notes."""
        shared = self.course.notes if self.course else None
        if not shared or not self.notes:
            return self.notes
        if self.notes == shared:
            return None
        return self.notes.removesuffix("\n\n" + shared)

    @property
    def facts(self) -> dict:
        """What an update must announce when it changes: time, place, link, status (for a course
        post, its sessions' facts by session id: each session is updated on its own)."""
        if self.sessions:
            return {"sessions": {session.id: session.facts for session in self.sessions}}
        return {
            "start": self.start.astimezone(timezone.utc).isoformat(),
            "end": self.end.astimezone(timezone.utc).isoformat(),
            "location": self.location,
            "online_url": self.online_url,
            "status": self.status,
        }
