"""Writes small series folders (announcer.toml + talks) for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

BASE_CONFIG = """\
[series]
name = "MaD Seminar"
timezone = "America/New_York"
location = "Auditorium Hall 150"
url = "https://example.edu/mad/"
domain = "mad.example.edu"

[mail]
from = "MaD Seminar <mad-organizers@example.edu>"
to = ["mad@lists.example.edu"]

[[messages]]
kind = "announcement"
before = "7d"
at = "09:00"

[[messages]]
kind = "reminder"
before = "1h"

[delivery]
transport = "maildir"
maildir = "outbox"
"""

PENNINGTON = """\
title: Dynamical Isometry and a Mean Field Theory of Signal Propagation in Deep Neural Networks
speaker:
  name: Jeffrey Pennington
  affiliation: Google
start: 2027-02-21 14:00
end: 2027-02-21 15:00
abstract: In recent years, many state-of-the-art models in deep learning have grown deep.
"""


def write_series(root: Path, talks: dict[str, str], config: str = BASE_CONFIG, extra: str = "") -> Path:
    """Write announcer.toml and talks/NAME files (dedented) under root; return the config path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "talks").mkdir(exist_ok=True)
    for name, text in talks.items():
        (root / "talks" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    path = root / "announcer.toml"
    path.write_text(textwrap.dedent(config) + textwrap.dedent(extra), encoding="utf-8")
    return path
