"""Imported talks -> talk files: ids and names, updates in place by source_uid, atomic writes, the report."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from announcer.errors import InputError, Problem
from announcer.importers.common import ImportedTalk, moment_in, slug
from announcer.sources.config import Series
from announcer.sources.timing import is_ambiguous, localize

ORDER = ("id", "title", "speaker", "start", "end", "location", "online_url", "url", "notes", "links", "status",
         "abstract", "source_uid")
TIED = ("end", "status")  # they follow the source: dropped when it no longer gives them
BLOCK_KEYS = ("abstract", "bio", "notes")
HEADER = ("# Imported by `announcer import` from {place}. Importing it again updates the keys it\n"
          "# brought in and keeps the keys you add.\n")


@dataclass
class Planned:
    """One talk file the import writes, updates or leaves as it is."""

    path: Path
    text: str
    state: str  # "new" | "updated" | "unchanged"
    place: str

    @property
    def shown(self) -> str:
        """The file's path as a person would type it: relative to the working folder when inside it."""
        return shown(self.path)


def shown(path: Path) -> str:
    """A path relative to the working folder when it is inside it, else as it is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do): files, notes, and the closing count line."""

    files: list[Planned]
    notes: list[Problem] = field(default_factory=list)
    dry_run: bool = False

    def count(self, state: str) -> int:
        return sum(1 for planned in self.files if planned.state == state)

    @property
    def summary(self) -> str:
        written, updated, unchanged = self.count("new"), self.count("updated"), self.count("unchanged")
        warnings = len(self.notes)
        verb = "would be written" if self.dry_run else "written"
        return (f"{written} talk{'' if written == 1 else 's'} {verb}, {updated} updated, {unchanged} unchanged, "
                f"{warnings} warning{'' if warnings == 1 else 's'}" + (" (dry run)" if self.dry_run else ""))


class _Block(str):
    """Long or multi-line text, written as a YAML block."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):  # lists indented under their key
        return super().increase_indent(flow, False)


def _block(dumper: yaml.SafeDumper, value: _Block) -> yaml.Node:
    style = "|" if all(len(line) <= 88 for line in value.split("\n")) else ">"
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style=style)


_Dumper.add_representer(_Block, _block)


def moment_text(moment: datetime, zone: ZoneInfo) -> str:
    """"2019-11-05 10:45" in the series' zone; with its offset where the wall-clock time alone is ambiguous."""
    local = moment.astimezone(zone)
    naive = local.replace(tzinfo=None)
    text = naive.strftime("%Y-%m-%d %H:%M" + (":%S" if naive.second else ""))
    try:
        if localize(naive, zone) == local and not is_ambiguous(local):
            return text
    except ValueError:
        pass
    return text.replace(" ", "T") + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


def talk_mapping(talk: ImportedTalk, talk_id: str, zone: ZoneInfo) -> dict[str, Any]:
    """The talk file's keys, in the usual order, times as text in the series' zone."""
    data = dict(talk.data)
    for key in ("start", "end"):
        if key in data:
            data[key] = moment_text(data[key], zone)
    data["id"] = talk_id
    data["source_uid"] = talk.source_uid
    return {key: data[key] for key in ORDER if key in data}


def _blocks(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _blocks(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_blocks(v, key) for v in value]
    if isinstance(value, str) and key in BLOCK_KEYS and ("\n" in value or len(value) > 80):
        return _Block("\n".join(line.rstrip() for line in value.split("\n")))
    return value


def dump_talk(mapping: dict[str, Any], header: str) -> str:
    """A talk file's text: the header comment, then the keys as YAML."""
    return header + yaml.dump(_blocks(mapping), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=88)


def _merge(existing: dict[str, Any], new: dict[str, Any], zone: ZoneInfo) -> dict[str, Any] | None:
    """The existing file's mapping with the imported keys brought up to date; None when nothing changed."""
    merged = dict(existing)
    changed = False
    talk_zone = zone
    if isinstance(existing.get("timezone"), str):
        try:
            talk_zone = ZoneInfo(existing["timezone"])
        except (ValueError, KeyError):
            pass
    for key, value in new.items():
        if key == "id":
            continue
        old = existing.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            value = {**old, **value}
        if key in ("start", "end"):
            same = old is not None and moment_in(old, talk_zone) == moment_in(value, zone)
        else:
            same = old == value
        if not same:
            merged[key] = value
            changed = True
    for key in TIED:
        if key in existing and key not in new:
            del merged[key]
            changed = True
    if existing.get("duration") is not None and "end" in new:
        del merged["duration"]  # the source's end replaces a length written by hand
        changed = True
    return merged if changed else None


def _header_of(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        lines.append(line + "\n")
    return "".join(lines)


def _existing_files(folder: Path) -> dict[str, tuple[Path, dict, str]]:
    """The folder's talk files that came from an import: source_uid -> (path, mapping, text)."""
    found: dict[str, tuple[Path, dict, str]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # not ours to read: it keeps its name, and a new file never takes it
        if isinstance(data, dict) and isinstance(data.get("source_uid"), str):
            found.setdefault(data["source_uid"], (path, data, text))
    return found


def plan_files(talks: list[ImportedTalk], folder: Path, series: Series, force: bool,
               notes: list[Problem]) -> list[Planned]:
    """What to write for each talk: a new file, an update of the file with its source_uid, or nothing."""
    zone = series.timezone
    existing = _existing_files(folder)
    planned: list[Planned] = []
    uids = {talk.source_uid for talk in talks}
    taken = {path.stem for uid, (path, _, _) in existing.items() if uid in uids}  # names kept by updates
    seen: set[str] = set()
    for talk in sorted(talks, key=lambda t: (t.start, t.source_uid)):
        if talk.source_uid in seen:
            notes.append(Problem(talk.place, None, f"a second talk from {talk.source_uid!r}: not imported"))
            continue
        seen.add(talk.source_uid)
        if talk.source_uid in existing:
            path, data, text = existing[talk.source_uid]
            merged = _merge(data, talk_mapping(talk, str(data.get("id") or path.stem), zone), zone)
            state = "unchanged" if merged is None else "updated"
            planned.append(Planned(path, text if merged is None else dump_talk(merged, _header_of(text)),
                                   state, talk.place))
            continue
        day = talk.start.astimezone(zone).strftime("%Y-%m-%d")
        name = _name(talk)
        talk_id = f"{day}-{name}"
        number = 1
        while talk_id in taken:
            number += 1
            talk_id = f"{day}-{name}-{number}"
        taken.add(talk_id)
        path = folder / f"{talk_id}.yaml"
        if (path.exists() or path.with_suffix(".yml").exists()) and not force:
            notes.append(Problem(shown(path), None, f"exists and is not from {talk.place}: left alone "
                                             "(--force replaces it)"))
            continue
        text = dump_talk(talk_mapping(talk, talk_id, zone), HEADER.format(place=talk.place))
        planned.append(Planned(path, text, "new", talk.place))
    return planned


def _name(talk: ImportedTalk) -> str:
    """The slug of the first speaker's family name, else of the title; "tba" for a placeholder."""
    speaker = talk.data.get("speaker")
    first = speaker[0] if isinstance(speaker, list) else speaker
    name = first.get("name") if isinstance(first, dict) else first
    if name:
        return slug(name.split()[-1]) or slug(name) or "talk"
    if talk.data.get("title"):
        return slug(talk.data["title"]) or "talk"
    return "tba"


def validate(planned: list[Planned], series: Series) -> None:
    """Load each file to be written as `check` would; a talk that would not load stops the import."""
    from announcer.sources.talks import load_talk_file

    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        for item in planned:
            if item.state == "unchanged":
                continue
            trial = Path(scratch) / item.path.name
            trial.write_text(item.text, encoding="utf-8")
            loaded = load_talk_file(trial, series)
            problems += [Problem(item.place.rsplit(":", 1)[0], int(item.place.rsplit(":", 1)[1]),
                                 f"the imported talk {item.path.name} would not load: {p.message}")
                         for p in loaded.problems if not p.warning]
    if problems:
        raise InputError(problems)


def write_files(planned: list[Planned]) -> None:
    """Write each new or updated file atomically (a temporary file beside it, then renamed)."""
    for item in planned:
        if item.state == "unchanged":
            continue
        item.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=item.path.parent, prefix=f".{item.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(item.text)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, item.path.stat().st_mode & 0o777 if item.path.exists() else 0o644)
            os.replace(temporary, item.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
