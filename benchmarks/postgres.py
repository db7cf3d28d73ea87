"""SPEC 8.4's two-daemon target: daemons sharing a PostgreSQL ledger send N due messages (10,000
by default) to a loopback SMTP sink with no duplicate and no loss, two faster than one.

    .venv/bin/python benchmarks/postgres.py [--messages N] [--sink smtp-sink|aiosmtpd]

It starts its own PostgreSQL server on 127.0.0.1 (the tests' tests/postgres_server.py: Debian's
`postgresql` package, a cluster made by initdb in a temporary folder), writes one series of N
talks whose announcements all fell due half an hour ago, and times from the daemons' start to
the sink's N-th message, once with one daemon and once with two (a fresh database each time).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))   # the PostgreSQL server the tests start

from postgres_server import PASSWORD, PostgresServer, find_or_install_postgresql  # noqa: E402
from run import CONFIG, SINKS, ZONE, announcer_script, machine, open_sink, progress, talk_yaml  # noqa: E402

SETTLE_SECONDS = 3.0   # after the N-th message, how long to watch for one more (a duplicate)


def write_due_talks(root: Path, messages: int) -> None:
    """`messages` talks two days ahead: their announcements fell due 30 minutes ago (write_config)."""
    (root / "talks").mkdir(parents=True)
    start = (datetime.now(timezone.utc) + timedelta(days=2)).astimezone(ZONE).strftime("%Y-%m-%d %H:%M")
    rng = random.Random(7)
    for number in range(1, messages + 1):
        (root / "talks" / f"talk-{number:05d}.yaml").write_text(talk_yaml(rng, number, start), encoding="utf-8")


def write_config(root: Path, port: int, url: str) -> Path:
    """The series' config: announcements 2 days 30 minutes ahead, SMTP to the sink, the ledger at `url`."""
    smtp = f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = "30s"\n'
    config = (CONFIG.format(transport="smtp", smtp=smtp)
              .replace('before = "7d"\nat = "09:00"', 'before = "2d30m"')
              .replace('path = "announcer.db"', f'url = "{url}"\nseries = "mad"'))
    (root / "announcer.toml").write_text(config, encoding="utf-8")
    return root / "announcer.toml"


def run_daemons(root: Path, count: int, messages: int, server: PostgresServer, sink_choice: str,
                work: Path) -> dict:
    """Start `count` daemons on a fresh database; the time to the sink's last message and the counts."""
    server.reset()
    sink = open_sink(work, sink_choice)
    config = write_config(root, sink.port, server.url)
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    logs = [(work / f"daemon-{count}-{n}.log").open("w") for n in range(count)]
    began = time.perf_counter()
    daemons = [subprocess.Popen([announcer_script(), "--config", str(config), "daemon"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, env=env) for log in logs]
    try:
        received = 0
        deadline = time.monotonic() + 900
        while received < messages and time.monotonic() < deadline:
            if any(d.poll() is not None for d in daemons):
                sys.exit(f"benchmark: a daemon exited {[d.poll() for d in daemons]}; see {work}")
            received = sink.counts(0)[1]
            time.sleep(0.05)
        took = time.perf_counter() - began
        time.sleep(SETTLE_SECONDS)
        received = sink.counts(messages)[1]
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon, log in zip(daemons, logs):
            daemon.wait(60)
            log.close()
        sink.stop()
    rows = server.psql("SELECT state, count(*) FROM announcer.messages GROUP BY state", database="announcer").stdout
    sent_by = [(work / f"daemon-{count}-{n}.log").read_text().count("Z sent ") for n in range(count)]
    states = ", ".join(f"{number} {state}" for state, number in (row.split("|") for row in rows.split()))
    return {"took": took, "received": received, "states": states, "sent_by": sent_by, "sink": sink.name}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="due messages (default 10000)")
    parser.add_argument("--sink", choices=["auto", *SINKS], default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) and print its path")
    args = parser.parse_args(argv)
    bin_dir, reason = find_or_install_postgresql()
    if bin_dir is None:
        sys.exit(f"benchmark: {reason}")
    work = Path(tempfile.mkdtemp(prefix="announcer-bench-pg-"))
    results = {}
    try:
        with PostgresServer(bin_dir) as server:
            progress(f"PostgreSQL on 127.0.0.1:{server.port}; writing {args.messages:,} talks")
            write_due_talks(work / "series", args.messages)
            for count in (1, 2):
                progress(f"{count} daemon(s) on one PostgreSQL ledger: {args.messages:,} due messages")
                results[count] = run_daemons(work / "series", count, args.messages, server, args.sink, work)
                progress(f"  {results[count]}")
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    today = datetime.now(timezone.utc)
    print(f"## announcer benchmark, two daemons on one PostgreSQL ledger, {today:%Y-%m-%d %H:%M} UTC\n")
    print(f"Machine: {machine()}. SMTP sink: {results[1]['sink']}.\n")
    print("| daemons | time to the last of the messages | messages/s | sink received | ledger | sent by each |")
    print("|---|---|---|---|---|---|")
    for count, result in results.items():
        rate = args.messages / result["took"]
        print(f"| {count} | {result['took']:.1f} s | {rate:.0f} | {result['received']:,} of {args.messages:,} | "
              f"{result['states']} | {' + '.join(map(str, result['sent_by']))} |")
    exact = all(r["received"] == args.messages and r["states"] == f"{args.messages} sent" for r in results.values())
    faster = results[2]["took"] < results[1]["took"]
    print(f"\nNo duplicate and no loss: {'yes' if exact else 'NO'}. Two faster than one: "
          f"{'yes' if faster else 'NO'} ({results[1]['took'] / results[2]['took']:.2f}x).")
    return 0 if exact and faster else 1


if __name__ == "__main__":
    sys.exit(main())
