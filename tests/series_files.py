"""Writes small series folders (announcer.toml + talks) for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from announcer.sources.config import Config, load_config
from announcer.sources.talk import Talk
from announcer.sources.talks import load_talk_file

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

# The MaD Seminar's full settings, for tests of what a message says (render, invite, message).
MAD_CONFIG = """\
[series]
name = "MaD Seminar"
timezone = "America/New_York"
location = "Auditorium Hall 150, Center for Data Science, NYU, 60 5th Ave"
url = "https://example.edu/mad/"
subscribe_url = "https://lists.example.edu/mailman/listinfo/mad"
domain = "mad.example.edu"
{extra}
[mail]
from = "{sender} <mad-organizers@example.edu>"
to = ["mad@lists.example.edu"]
reply_to = "mad-organizers@example.edu"

[delivery]
transport = "maildir"
"""


def mad_config(sender: str = "MaD Seminar", extra: str = "") -> str:
    """MAD_CONFIG with this sender's name and extra [series] lines."""
    return MAD_CONFIG.format(sender=sender, extra=extra)


def load_mad_talks(tmp_path: Path, talk_yaml: str, sender: str = "MaD Seminar",
                   extra: str = "") -> tuple[Config, list[Talk]]:
    """The MaD config and the talks of one file, written inline and loaded by the real loaders."""
    (tmp_path / "talks").mkdir(exist_ok=True)
    (tmp_path / "announcer.toml").write_text(mad_config(sender, extra), encoding="utf-8")
    config = load_config(tmp_path / "announcer.toml")
    path = tmp_path / "talks" / "talk.yaml"
    path.write_text(textwrap.dedent(talk_yaml), encoding="utf-8")
    loaded = load_talk_file(path, config.series)
    assert loaded.ok, loaded.problems
    return config, loaded.talks


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


def series_with_a_broken_reminder_subject(tmp_path):
    """Pennington, with an overriding reminder subject whose line 2 names an undefined attribute."""
    (tmp_path / "overrides").mkdir(parents=True)
    (tmp_path / "overrides" / "reminder.subject.j2").write_text("Soon: {{ talk.title }}\n{{ talk.room }}\n")
    config = write_series(tmp_path, {"pennington.yaml": PENNINGTON},
                          config=BASE_CONFIG.replace('domain = "mad.example.edu"',
                                                     'domain = "mad.example.edu"\ntemplates_dir = "overrides"'))
    return config


def talk(title: str, start: str, **extra: str) -> str:
    """A talk file's YAML."""
    lines = [f"title: {title}", "speaker: Ada Lovelace", f"start: {start}"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def write_talk(config: Path, name: str, text: str) -> Path:
    """Write talks/NAME the way editors save: a temporary file renamed over the old one."""
    path = config.parent / "talks" / name
    temporary = path.with_name(f".{name}.tmp")
    temporary.write_text(textwrap.dedent(text), encoding="utf-8")
    temporary.replace(path)
    return path
