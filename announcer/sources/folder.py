"""A folder of series (SPEC 8.4): each direct subfolder holding an `announcer.toml` is a series,
keyed by the subfolder's name."""

from __future__ import annotations

import os
from pathlib import Path

from announcer.errors import AnnouncerError
from announcer.sources.config import CONFIG_ENV
from announcer.sources.values import did_you_mean

CONFIG_NAME = "announcer.toml"


def series_folder(config_option: str | None) -> Path | None:
    """The folder of series that `--config` (else $ANNOUNCER_CONFIG) names, or None for one series."""
    chosen = config_option or os.environ.get(CONFIG_ENV)
    if chosen and Path(chosen).is_dir():
        return Path(chosen)
    return None


def series_configs(folder: Path) -> dict[str, Path]:
    """Each series of the folder, by name, with its announcer.toml; in name order."""
    found = {}
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        raise AnnouncerError(f"{folder}: cannot read the folder of series: {error.strerror}") from None
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        config = Path(entry.path) / CONFIG_NAME
        if config.is_file():
            found[entry.name] = config
    return found


def split_talk(folder: Path, configs: dict[str, Path], talk: str) -> tuple[str, str]:
    """`SERIES/TALK` as (series, talk); an error names the series the folder holds."""
    name, slash, talk_id = talk.partition("/")
    if not slash or not talk_id:
        raise AnnouncerError(f'{folder} is a folder of series: write the talk as SERIES/TALK, e.g. '
                             f'"{next(iter(configs), "SERIES")}/{talk}"')
    if name not in configs:
        raise AnnouncerError(f'no series "{name}" in {folder}{did_you_mean(name, list(configs))}')
    return name, talk_id
