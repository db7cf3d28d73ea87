"""talks/*.yaml -> frozen Talk values, with `path:line` on every problem."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from announcer.errors import Problem
from announcer.sources.config import Series
from announcer.sources.talk import Course, Talk
from announcer.sources.talk_fields import ID, TalkReader
from announcer.sources.yamlfile import LineDict, read_yaml


@dataclass
class TalkFile:
    """What one file yielded: its talks and its problems (warnings included)."""

    path: Path
    talks: list[Talk] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(not p.warning for p in self.problems)


def load_talk_file(path: Path, series: Series) -> TalkFile:
    """Load one talks file: a single talk, or several under `talks:` with shared defaults."""
    result = TalkFile(path)
    if path.is_symlink() and not _inside(path, series.talks_dir):
        result.problems.append(Problem(path, 1, "a symbolic link to a file outside the talks folder: not read"))
        return result
    document, result.problems = read_yaml(path)
    if result.problems:
        return result
    if document is None:
        result.problems.append(Problem(path, 1, "empty file: no talk yet", warning=True))
        return result
    if not isinstance(document, dict):
        result.problems.append(Problem(path, 1, "a talks file holds one talk (a mapping) or a list under \"talks:\""))
        return result
    if "talks" in document:
        entries = document["talks"]
        defaults = LineDict({k: v for k, v in document.items() if k != "talks"})
        defaults.lines = {k: n for k, n in document.lines.items() if k != "talks"}
        defaults.line = document.line
        if not isinstance(entries, list):
            result.problems.append(Problem(path, document.lines["talks"], '"talks" must be a list of talks'))
            return result
        if "id" in defaults:
            result.problems.append(Problem(path, defaults.lines["id"], '"id" cannot be shared: give each talk its own'))
            return result
        together = _announce_together(result, defaults)
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict):
                result.problems.append(Problem(path, document.lines["talks"], f"talk {number} is not a mapping"))
                continue
            merged = LineDict({**defaults, **entry})
            merged.lines = {**defaults.lines, **entry.lines}
            merged.line = entry.line
            course = defaults if "notes" in entry and "notes" in defaults else None
            _add_talk(result, merged, f"{path.stem}-{number}", series, course)
        if together and result.ok and result.talks:
            _make_course(result, defaults)
    else:
        _add_talk(result, document, path.stem, series)
    return result


def _inside(link: Path, folder: Path) -> bool:
    """Whether a symbolic link leads to a file inside the folder."""
    try:
        return link.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def _announce_together(result: TalkFile, defaults: LineDict) -> bool:
    """Take `announce` out of a several-talk file's defaults: True for `announce: together`."""
    if "announce" not in defaults:
        return False
    line = defaults.lines.pop("announce", defaults.line)
    if defaults.pop("announce") != "together":
        result.problems.append(Problem(result.path, line, '"announce" must be "together" (one post announces '
                                                          "every talk of the file) or left out"))
        return False
    if not ID.fullmatch(result.path.stem):
        result.problems.append(Problem(result.path, line, f"the course's id is its file's name, {result.path.stem!r}, "
                                                          'which may hold only letters, digits, ".", "_" and "-"'))
        return False
    if "title" not in defaults:
        result.problems.append(Problem(result.path, line, '"announce: together" needs the course\'s name as a '
                                                          '"title" at the top of the file'))
        return False
    return True


def _make_course(result: TalkFile, defaults: LineDict) -> None:
    """Mark the file's talks as sessions of one course (their shared keys are read as validated)."""
    shared = TalkReader(result.path, defaults)  # problems in these keys are the sessions' already
    course = Course(id=result.path.stem, title=shared.text("title", one_line=True) or result.path.stem,
                    speakers=shared.speakers(), abstract=shared.text("abstract"), notes=shared.text("notes"),
                    links=shared.links(), url=shared.link("url"), path=result.path, line=defaults.lines["title"])
    result.talks = [replace(talk, course=course) for talk in result.talks]


def _add_talk(result: TalkFile, data: LineDict, default_id: str, series: Series,
              course: LineDict | None = None) -> None:
    reader = TalkReader(result.path, data, course)
    talk = reader.talk(default_id, series)
    result.problems.extend(reader.problems)
    if talk is not None and not any(not p.warning for p in reader.problems):
        result.talks.append(talk)


@dataclass
class TalkSet:
    """Every talk of a series, and every problem met loading them."""

    talks: list[Talk]
    problems: list[Problem]
    files: dict[Path, TalkFile] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]


def talk_paths(talks_dir: Path) -> list[Path]:
    """The talk files of a folder, in name order (by its entries' names and types: no stat a file)."""
    with os.scandir(talks_dir) as entries:
        names = sorted(entry.name for entry in entries
                       if os.path.splitext(entry.name)[1] in (".yaml", ".yml") and entry.is_file())
    return [talks_dir / name for name in names]


def combine(files: list[TalkFile]) -> TalkSet:
    """Merge per-file results, checking that talk ids are unique across files."""
    talks: list[Talk] = []
    problems: list[Problem] = []
    seen: dict[str, Talk] = {}
    for talk_file in files:
        problems.extend(talk_file.problems)
        for talk in talk_file.talks:
            if talk.id in seen:
                first = seen[talk.id]
                problems.append(Problem(talk.path, talk.line, f'talk id "{talk.id}" is also used at '
                                                              f"{first.path}:{first.line}"))
                continue
            seen[talk.id] = talk
            talks.append(talk)
    for course in dict.fromkeys(talk.course for talk in talks if talk.course):
        if course.id in seen:
            talk = seen[course.id]
            problems.append(Problem(course.path, course.line, f'the course "{course.id}" (the file\'s name) is also '
                                                              f"a talk id, at {talk.path}:{talk.line}: rename one of them"))
    talks.sort(key=lambda t: (t.start, t.id))
    return TalkSet(talks=talks, problems=problems, files={f.path: f for f in files})


def load_talks(series: Series) -> TalkSet:
    """Load every talk file of the series."""
    if not series.talks_dir.is_dir():
        return TalkSet([], [Problem(series.talks_dir, None, "no such talks folder")])
    return combine([load_talk_file(path, series) for path in talk_paths(series.talks_dir)])
