"""GNU Mailman's own virtual environment for tests/test_mailman.py: where it is, and making it.

Mailman 3.3.10 and its pinned dependencies (tests/mailman/requirements.txt) live apart from
announcer's environment, cached under ~/.cache/announcer-mailman (or $ANNOUNCER_MAILMAN_CACHE),
one folder per Python version and set of pins, so a changed pin makes a new one. `.ci/run`
makes it; a developer does the same with

    .venv/bin/python tests/mailman_env.py

which prints the folder, installing it first if it is missing or was left half made.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REQUIREMENTS = Path(__file__).parent / "mailman" / "requirements.txt"
READY = ".ready"  # written last: a folder without it was interrupted and is made again
SETUP_COMMAND = ".venv/bin/python tests/mailman_env.py"


def cache_root() -> Path:
    """The folder holding Mailman's environments."""
    if root := os.environ.get("ANNOUNCER_MAILMAN_CACHE"):
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "announcer-mailman"


def pins() -> str:
    """The requirement lines of the requirements file, without comments (which change nothing)."""
    lines = (line.split("#")[0].strip() for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines())
    return "\n".join(line for line in lines if line)


def venv_path() -> Path:
    """This Python's and these pins' environment (which may not exist yet)."""
    digest = hashlib.sha256(pins().encode()).hexdigest()[:12]
    return cache_root() / f"py{sys.version_info.major}.{sys.version_info.minor}-{digest}"


def ready_venv() -> Path | None:
    """The environment, if it was made completely; else None."""
    path = venv_path()
    return path if (path / READY).is_file() and (path / "bin" / "mailman").is_file() else None


def make_venv() -> Path:
    """Make the environment unless it is ready; return its folder."""
    if ready := ready_venv():
        return ready
    path = venv_path()
    shutil.rmtree(path, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(path)
    subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True)
    (path / READY).write_text(pins() + "\n", encoding="utf-8")
    for older in path.parent.glob(path.name.split("-")[0] + "-*"):  # this Python's older pins
        if older != path:
            shutil.rmtree(older, ignore_errors=True)
    return path


if __name__ == "__main__":
    print(make_venv())
