"""A smoke run of benchmarks/run.py on a few talks: it completes and prints every row (timings unchecked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def test_benchmark_script_runs_and_prints_the_table():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--talks", "3", "--quick", "--skip-mailmerge", "--sink", "aiosmtpd",
         "--daemon-seconds", "1"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "| what | measured | target | met |" in out
    for row in ("| `announcer --help` | ", "| `check`, 3 talks | ", "| `preview --out`, 3 talks × 2 kinds | 0",
                "| `send --due`, 6 messages | ", "| mailmerge 2.3.0, same sink | skipped",
                "| daemon at rest, 3 talks: memory | ", "| daemon at rest, 3 talks: CPU | ",
                "| daemon timeliness | reminder written "):
        assert row in out, row
    assert "1 SMTP connection |" in out       # the pass used one connection: behaviour, not timing
    assert "; 6 files)" in out                # preview wrote one file per talk and kind
    assert "| 3 | " in out                    # the growth table
    assert "Machine: " in out and "SMTP sink: aiosmtpd" in out
