"""`announcer import`: other people's formats -> talk files (SPEC 8.1).

sources.py reads the SOURCE arguments (files, folders, feed URLs); ics.py, frontmatter.py and
schedule.py (with page.py, which splits a page's front matter from its body) turn each into
talks and notes on what had no place in them; write.py names the files, updates those from an
earlier import, writes atomically and counts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from announcer.errors import InputError, Problem
from announcer.importers.write import ImportReport


def import_talks(config_option: str | None, sources: list[str], into: Path | None = None, force: bool = False,
                 dry_run: bool = False, now: datetime | None = None) -> ImportReport:
    """Read every source, then write (or, dry, only plan) the talk files; nothing is written on an error."""
    from announcer.importers.sources import read_sources
    from announcer.importers.write import plan_files, validate, write_files
    from announcer.sources.config import find_config, load_config

    series = load_config(find_config(config_option)).series
    folder = into if into is not None else series.talks_dir
    results = read_sources(sources, series.timezone, now or datetime.now(timezone.utc))
    notes = [note for result in results for note in result.notes]
    talks = [talk for result in results for talk in result.talks]
    planned = plan_files(talks, folder, series, force, notes)
    validate(planned, series)
    if not dry_run:
        try:
            write_files(planned)
        except OSError as error:
            raise InputError([Problem(error.filename or folder, None, f"cannot write: {error.strerror}")]) from None
    return ImportReport(planned, list(dict.fromkeys(notes)), dry_run)
