"""A course announced in one post (SPEC 8.5): its sessions (talks of one file with
`announce: together`) gathered into the one Talk that the course's announcement is about."""

from __future__ import annotations

from announcer.sources.talk import STATUSES, Course, Talk


def course_posts(talks: list[Talk]) -> list[Talk]:
    """The course posts of these talks: one Talk per course, holding its sessions (SPEC 8.5).

    A post's id, title, speakers, abstract, notes and links are the course's; it runs from its
    first listed session's start to the last one's end; it has no place of its own (its sessions do).
    """
    by_course: dict[Course, list[Talk]] = {}
    for talk in talks:
        if talk.course is not None:
            by_course.setdefault(talk.course, []).append(talk)
    posts = []
    for course, every in by_course.items():
        # A tentative session is not announced (SPEC 2.2): once confirmed, after the post went
        # out, it is announced on its own (plan.py). A course of tentative sessions is tentative.
        sessions = sorted([t for t in every if t.status != "tentative"] or every, key=lambda t: (t.start, t.id))
        statuses = {t.status for t in sessions}
        status = next(s for s in STATUSES if s in statuses)  # confirmed if any session is
        posts.append(Talk(
            id=course.id, title=course.title, speakers=course.speakers, start=sessions[0].start,
            end=max(t.end for t in sessions), timezone=sessions[0].timezone, location=None, online_url=None,
            abstract=course.abstract, notes=course.notes, links=course.links, status=status, url=course.url,
            path=course.path, line=course.line, sessions=tuple(sessions)))
    return posts


def with_course_posts(talks: list[Talk]) -> dict[str, Talk]:
    """Talks and course posts by id: what a planned message's TALK names."""
    return {talk.id: talk for talk in [*talks, *course_posts(talks)]}
