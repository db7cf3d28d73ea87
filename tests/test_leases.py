"""A claim left by a process killed mid-send is recovered as `uncertain` once its lease runs out,
even when the next run has the same PID (PID 1 of a fresh PID namespace, as in a container) or the
host name changed: real processes, SIGKILL, a real server, a real ledger (SPEC 5)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest
from typer.testing import CliRunner

from announcer.cli import app
from announcer.deliver.ledger import SqliteLedger

from conftest import announcer_command, write_config

runner = CliRunner()
TALK = """\
title: Dynamical Isometry
speaker: {name: Jeffrey Pennington, affiliation: Google}
start: 2027-02-21 14:00
"""
ANNOUNCEMENT_DUE = "2027-02-15T12:00:00Z"
LEASE = 1.0  # seconds: the runs below hold leases this short, renewed every quarter of it


def _namespaces_work() -> str | None:
    """Why PID and UTS namespaces cannot be used here, or None when they can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--uts",
                            "sh", "-c", "hostname probe && test $$ = 1"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"cannot create PID and UTS namespaces here (needs root): {probe.stderr.strip()}"
    return None


NO_NAMESPACES = _namespaces_work()
pytestmark = pytest.mark.skipif(NO_NAMESPACES is not None, reason=str(NO_NAMESPACES))


def in_container(hostname: str, config, *args: str) -> subprocess.Popen:
    """`announcer --config CONFIG ARGS` as PID 1 of a fresh PID namespace, under its own host name."""
    command = ["unshare", "--pid", "--fork", "--mount-proc", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"',
               hostname, *announcer_command(LEASE), "--config", str(config), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def state(tmp_path) -> str:
    with SqliteLedger(tmp_path / "announcer.db") as ledger:
        return ledger.db.execute("SELECT state FROM messages").fetchone()[0]


@pytest.mark.parametrize("first_host, next_host", [("box", "box"), ("box-a", "box-b")],
                         ids=["same-pid-1", "host-name-changed"])
def test_a_claim_killed_mid_send_becomes_uncertain_when_its_lease_runs_out(tmp_path, smtp_plain, first_host,
                                                                          next_host):
    config = write_config(tmp_path, smtp_plain)
    (tmp_path / "talks" / "pennington.yaml").write_text(TALK)
    smtp_plain.stall_after_data(15)  # the server has the message; its reply never comes in time
    first = in_container(first_host, config, "send", "--due", "--now", ANNOUNCEMENT_DUE)
    try:
        wait_until(lambda: len(smtp_plain.messages) == 1, "the message in flight")
        # While the first run lives, its lease is renewed: a second run (also PID 1) leaves the claim alone.
        time.sleep(3 * LEASE)
        live = in_container(next_host, config, "send", "--due", "--now", ANNOUNCEMENT_DUE)
        out, err = live.communicate(timeout=60)
        assert live.returncode == 0, (out, err)
        assert out.splitlines()[-1] == "0 sent, 0 retry, 0 failed, 0 uncertain"
        assert state(tmp_path) == "claimed"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # unshare and the namespace's PID 1, our own process group
        first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL

    time.sleep(2 * LEASE)  # nothing renews the dead run's lease now
    shown = runner.invoke(app, ["--config", str(config), "plan", "--now", ANNOUNCEMENT_DUE])
    assert "pennington  announcement  uncertain" in shown.stdout  # never hidden, even before a pass

    after = in_container(next_host, config, "send", "--due", "--now", ANNOUNCEMENT_DUE)
    out, err = after.communicate(timeout=60)
    assert after.returncode == 3, (out, err)
    assert "uncertain pennington announcement: the process sending it stopped before recording the outcome" in out
    assert out.splitlines()[-1] == "0 sent, 0 retry, 0 failed, 1 uncertain"
    assert state(tmp_path) == "uncertain"
    log = runner.invoke(app, ["--config", str(config), "log"])
    assert "pennington  announcement  uncertain" in log.stdout
    assert len(smtp_plain.messages) == 1  # never sent twice
