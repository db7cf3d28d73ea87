"""Golden files: expected output kept in tests/golden/, compared byte for byte.

After an intended change of the output, regenerate them with
`UPDATE_GOLDEN=1 pytest tests/test_invite.py tests/test_message.py`, read the diff, and commit them.
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def assert_golden(name: str, data: bytes) -> None:
    """Compare with tests/golden/NAME, or rewrite it when UPDATE_GOLDEN is set."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1 once and commit it"
    assert data == path.read_bytes(), f"{name} differs from its golden file"
