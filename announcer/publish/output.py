"""Writing published files so that a reader (a web server, a calendar fetching the feed) never
sees half of one: each is written beside its place and renamed over it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from announcer.errors import AnnouncerError


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` in one step: the old file, or the new one whole, never a part."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o644)  # mkstemp makes it 0600: a published file is for everyone
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise AnnouncerError(f"{path}: cannot write: {error.strerror or error}") from None
