"""One daemon per ledger (a kernel flock beside it), and telling systemd the daemon's state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from announcer.errors import LockedError
from announcer.run.lock import DaemonLock, notify_systemd

HOLD = """
import sys, time
from pathlib import Path
from announcer.run.lock import DaemonLock
DaemonLock.acquire(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_a_lock_held_by_a_process_killed_with_sigkill_is_free_at_once(tmp_path):
    ledger = tmp_path / "announcer.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(ledger)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(LockedError, match=rf"\(pid {holder.pid}\)"):
            DaemonLock.acquire(ledger)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    DaemonLock.acquire(ledger).release()  # no stale lock to clean up
    assert (tmp_path / "announcer.db.lock").exists()


def test_the_lock_file_names_the_holder_and_is_created_with_its_folder(tmp_path):
    lock = DaemonLock.acquire(tmp_path / "state" / "announcer.db")
    try:
        assert (tmp_path / "state" / "announcer.db.lock").read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()
    lock.release()  # a second release is harmless


def test_a_lock_file_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "state").write_text("a file where the folder should be")
    with pytest.raises(LockedError, match=r"state/announcer\.db\.lock: cannot open the lock file"):
        DaemonLock.acquire(tmp_path / "state" / "announcer.db")


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_systemd_sends_the_state_to_the_notify_socket(tmp_path, monkeypatch, abstract):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        if abstract:
            name = f"announcer-test-{os.getpid()}-{time.monotonic_ns()}"
            server.bind("\0" + name)
            monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        else:
            server.bind(str(tmp_path / "notify"))
            monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
        server.settimeout(5)
        notify_systemd("READY=1")
        notify_systemd("STOPPING=1")
        assert [server.recv(100), server.recv(100)] == [b"READY=1", b"STOPPING=1"]


def test_notify_systemd_without_systemd_or_with_a_gone_socket_does_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notify_systemd("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    notify_systemd("READY=1")  # systemd went away: the daemon carries on


def test_the_lock_admits_one_holder_and_names_it(tmp_path):
    lock = DaemonLock.acquire(tmp_path / "announcer.db")
    try:
        with pytest.raises(LockedError, match=rf"announcer\.db\.lock: another daemon \(pid {os.getpid()}\) is "
                                              "already serving this ledger"):
            DaemonLock.acquire(tmp_path / "announcer.db")
    finally:
        lock.release()
    DaemonLock.acquire(tmp_path / "announcer.db").release()
