"""`announcer init`: write a new series folder from the files beside this module."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from announcer.errors import AnnouncerError

PLAN = (("announcer.toml", "announcer.toml"),
        ("example-talk.yaml", "talks/2027-02-21-example.yaml"),
        ("templates-README.txt", "templates/README.txt"))


def write_skeleton(directory: Path) -> list[Path]:
    """Write the config, an example talk and a templates folder; refuse to overwrite anything."""
    targets = [(name, directory / target) for name, target in PLAN]
    existing = [str(path) for _, path in targets if path.exists()]
    if existing:
        raise AnnouncerError(f"{existing[0]}: already exists; init never overwrites (choose another DIR)")
    source = files("announcer.skeleton")
    for name, path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    return [path for _, path in targets]
