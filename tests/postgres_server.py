"""A real PostgreSQL server for the tests: Debian's `postgresql` package, a cluster made by
`initdb` in a temporary folder, served on 127.0.0.1 and stopped at the end.

PostgreSQL refuses to run as root, and these machines run as root: the cluster then belongs to
the `postgres` user the package creates, and its programs run as that user. Logins over TCP
need a password (scram-sha-256), so a wrong one is refused as on a real server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

INSTALL = "apt-get update && apt-get install -y postgresql"
OPT_IN = "ANNOUNCER_INSTALL_POSTGRESQL"
USER, PASSWORD, DATABASE = "announcer", "a-test-password", "announcer"


def find_or_install_postgresql() -> tuple[Path | None, str]:
    """The folder of PostgreSQL's programs (initdb, postgres), installing Debian's package as
    root under CI=true or ANNOUNCER_INSTALL_POSTGRESQL=1; else None and the reason to skip."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent, ""
    allowed = os.environ.get("CI") == "true" or os.environ.get(OPT_IN) == "1"
    if not (allowed and os.geteuid() == 0):
        return None, (f"PostgreSQL is not installed: run `{INSTALL}` as root, or set {OPT_IN}=1 "
                      "(as root) to let the tests install it")
    done = subprocess.run(["sh", "-c", INSTALL], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if done.returncode != 0 or not found:
        return None, f"`{INSTALL}` failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
    return Path(found[-1]).parent, ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One cluster on 127.0.0.1 with a role and a database for announcer. Use as a context manager."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="announcer-postgres-"))
        self.data = self.folder / "data"
        self.user = "postgres" if os.geteuid() == 0 else None   # who runs the server's programs
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *command: str, **options) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin_dir / command[0]), *command[1:]], user=self.user, check=True,
                              capture_output=True, text=True, timeout=120, cwd=self.folder, **options)

    def start(self) -> PostgresServer:
        password_file = self.folder / "superuser-password"
        password_file.write_text("superuser-password\n")
        if self.user:
            shutil.chown(password_file, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8", "--locale=C")
        self.log = open(self.folder / "server.log", "a")  # noqa: SIM115 (closed by stop)
        self.resume()
        self.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
        self.psql(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        return self

    def pause(self) -> None:
        """Stop the server ("fast": its clients are cut off), keeping its data and port for `resume`."""
        self.process.send_signal(signal.SIGINT)   # SIGTERM's "smart" shutdown would wait for the clients
        self.process.wait(30)

    def resume(self) -> None:
        """Start the server (again) on its port, and wait until it takes logins."""
        self.process = subprocess.Popen(
            [str(self.bin_dir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(self.folder), "-c", "fsync=off", "-c", "max_connections=200"],
            user=self.user, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.folder)
        deadline = time.monotonic() + 60
        while self.psql("SELECT 1", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{(self.folder / 'server.log').read_text()}")
            time.sleep(0.1)

    def psql(self, sql: str, database: str = "postgres", check: bool = True) -> subprocess.CompletedProcess:
        """Run SQL as the superuser over the server's Unix socket."""
        return subprocess.run([str(self.bin_dir / "psql"), "-h", str(self.folder), "-p", str(self.port),
                               "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                              user=self.user, capture_output=True, text=True, timeout=60, check=check)

    def reset(self) -> None:
        """A fresh database for the next test (the role stays)."""
        self.psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {DATABASE} OWNER {USER}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.pause()
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process is not None:
            self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
