"""What changed on disk: a cheap polling watch of the series' folders, and talk files kept per file.

Polling (name, mtime_ns, size, inode) every 2 seconds sees saves by rename (what editors do) and
works on network mounts, where inotify sees nothing (reference/scheduling.md section 3.7).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from announcer.sources.config import Series
from announcer.sources.talks import TalkFile, TalkSet, combine, load_talk_file, talk_paths

Stamp = tuple[int, int, int]          # mtime_ns, size, inode: a save by rename changes the inode
SETTLE_TRIES = 4                      # act on a folder that keeps changing after this many looks


def file_stamp(path: Path) -> Stamp | None:
    """What tells one version of a file from the next; None when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _ignored(name: str) -> bool:
    """Editor droppings: hidden, swap, backup and temporary files."""
    return name.startswith(".") or name.endswith(("~", ".swp", ".swx", ".tmp"))


def snapshot(paths: Iterable[Path | None]) -> dict[str, Stamp]:
    """Every watched file's stamp: the files themselves, and the direct entries of folders."""
    found: dict[str, Stamp] = {}
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                if _ignored(entry.name):
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                found[entry.path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        else:
            stamp = file_stamp(path)
            if stamp is not None:
                found[str(path)] = stamp
    return found


class FolderWatch:
    """Polls the config file and the talks and templates folders; reports a change once it settles."""

    def __init__(self, paths: Iterable[Path | None], settle_seconds: float = 0.25) -> None:
        self.paths = tuple(paths)
        self.settle_seconds = settle_seconds
        self._acted = snapshot(self.paths)

    def poll(self) -> list[str]:
        """The paths changed since the last report, once two snapshots a moment apart agree."""
        current = snapshot(self.paths)
        for _ in range(SETTLE_TRIES):
            if current == self._acted:
                return []
            time.sleep(self.settle_seconds)
            again = snapshot(self.paths)
            if again == current:
                break
            current = again
        changed = sorted(name for name in self._acted.keys() | current.keys()
                         if self._acted.get(name) != current.get(name))
        self._acted = current
        return changed


class TalkFiles:
    """The talks, loaded per file: unchanged files are not re-read, and a file that fails to load
    keeps its last good version in force (one that never loaded is left out)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.stamps: dict[Path, Stamp] = {}
        self.good: dict[Path, TalkFile] = {}
        self.talkset = TalkSet([], [])
        self._folder_missing = False

    def refresh(self, series: Series, force: bool = False, quiet: bool = False) -> bool:
        """Re-read new and changed files (every file with force); True when the talks may differ.

        Problems are logged as `path:line: message`; with quiet, successful loads are not.
        """
        paths = self._paths(series.talks_dir)
        changed = False
        for path in paths:
            stamp = file_stamp(path)
            if stamp is None or (not force and self.stamps.get(path) == stamp):
                continue
            changed = True
            if self._load(path, series, quiet):  # only then: a load that broke off is tried again
                self.stamps[path] = stamp
        present = set(paths)
        for path in [p for p in self.stamps.keys() | self.good.keys() if p not in present]:
            self.stamps.pop(path, None)
            if self.good.pop(path, None) is not None:
                self.log(f"{path}: removed; its talks are no longer served")
            changed = True
        if changed:
            known = {p for f in self.good.values() for p in f.problems}
            self.talkset = combine([self.good[p] for p in sorted(self.good)])
            for problem in self.talkset.problems:
                if problem not in known:
                    self.log(str(problem))
        return changed

    def _paths(self, folder: Path) -> list[Path]:
        if not folder.is_dir():
            if not self._folder_missing:
                self.log(f"{folder}: no such talks folder")
            self._folder_missing = True
            return []
        self._folder_missing = False
        return talk_paths(folder)

    def _load(self, path: Path, series: Series, quiet: bool) -> bool:
        """Load one file, keeping its last good version if it fails; False if the load broke off."""
        try:
            loaded = load_talk_file(path, series)
        except Exception as error:  # a bug met by one file's content must not stop the other talks
            why = " ".join(str(error).split())[:200]
            self.log(f"{path}: not loaded ({type(error).__name__}: {why}); "
                     + ("its last good version stays in force" if path in self.good else "left out"))
            return False
        for problem in loaded.problems:
            self.log(str(problem))
        count = len(loaded.talks)
        if loaded.ok:
            self.good[path] = loaded
            if not quiet:
                self.log(f"loaded {path} ({count} talk{'s' * (count != 1)})")
        elif path in self.good:
            count = len(self.good[path].talks)
            self.log(f"{path}: not loaded; its last good version ({count} talk{'s' * (count != 1)}) "
                     "stays in force until the errors are fixed")
        else:
            self.log(f"{path}: not loaded; left out until the errors are fixed")
        return True
