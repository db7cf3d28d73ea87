"""Work split over forked workers: results in order, errors raised here, and the same output as one process."""

from __future__ import annotations

import gc
import os
import re
import sys

import pytest
from typer.testing import CliRunner

from announcer.cli import app
from announcer.errors import AnnouncerError, InputError, Problem
from announcer.run import workers as cores

from series_files import BASE_CONFIG, write_series

runner = CliRunner()
linux = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")


@pytest.fixture
def two_workers(monkeypatch):
    """Work split for two workers, whatever this machine has (forking works on one core too)."""
    monkeypatch.setattr(cores, "worker_count", lambda: 2)
    monkeypatch.setattr(cores, "SERIAL_BELOW", 4)


def tag_with_pid(chunk):
    return [(item, os.getpid(), tuple(chunk)) for item in chunk]


def collecting(chunk):
    return [gc.isenabled() for _ in chunk]


def failing(chunk):
    raise InputError([Problem("talks/x.yaml", 3, "bad")])


@linux
def test_workers_do_not_collect_and_this_process_collects_again_after(two_workers):
    assert gc.isenabled()
    assert cores.in_chunks(collecting, list(range(20)), group=lambda item: item) == [False] * 20
    assert gc.isenabled()
    with pytest.raises(InputError):
        cores.in_chunks(failing, list(range(20)), group=lambda item: item)
    assert gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        cores.in_chunks(collecting, list(range(20)), group=lambda item: item)
        assert not gc.isenabled()
    finally:
        gc.enable()


@linux
def test_chunks_run_in_forked_workers_keep_groups_whole_and_come_back_in_order(two_workers):
    items = [f"talk{n % 7}-{n}" for n in range(60)]   # seven talks, their messages interleaved
    results = cores.in_chunks(tag_with_pid, items, group=lambda item: item.split("-")[0])
    assert [item for item, _, _ in results] == items
    assert os.getpid() not in {pid for _, pid, _ in results}
    chunks = {chunk for _, _, chunk in results}
    assert len(chunks) > 1
    for talk in range(7):  # every item of a talk went to the same chunk
        assert len({chunk for item, _, chunk in results if item.startswith(f"talk{talk}-")}) == 1


def test_small_work_stays_in_this_process():
    results = cores.in_chunks(tag_with_pid, list(range(10)), group=lambda item: item)
    assert results == [(item, os.getpid(), tuple(range(10))) for item in range(10)]


def fail_on_seven(chunk):
    if 7 in chunk:
        raise InputError([Problem("talks/seven.yaml", 3, "seven is bad")])
    return chunk


@linux
def test_an_error_in_a_worker_is_raised_here_with_its_problems(two_workers):
    with pytest.raises(InputError) as raised:
        cores.in_chunks(fail_on_seven, list(range(20)), group=lambda item: item)
    assert raised.value.problems == [Problem("talks/seven.yaml", 3, "seven is bad")]
    assert str(raised.value) == "talks/seven.yaml:3: seven is bad"


def many_talks(count: int, oversized: bool = True) -> dict[str, str]:
    talks = {f"t{n:02d}.yaml": f"title: Talk {n}\nspeaker: Speaker {n}\nstart: 2027-03-{n + 1:02d} 14:00\n"
                               f"abstract: |\n  Abstract {n}, with *emphasis* and [a link](https://example.org/{n}).\n"
             for n in range(count)}
    if oversized:
        talks["t03.yaml"] += "  " + "A long abstract line. " * 400 + "\n"   # over max_size
    return talks


@linux
def test_check_and_preview_say_the_same_on_every_core_as_in_one_process(tmp_path, monkeypatch, two_workers):
    config = write_series(tmp_path, many_talks(24),
                          config=BASE_CONFIG.replace('to = ["mad@lists.example.edu"]',
                                                     'to = ["mad@lists.example.edu"]\nmax_size = "8KB"'))
    outputs = {}
    for label, serial_below in (("one process", 10**6), ("workers", 4)):
        monkeypatch.setattr(cores, "SERIAL_BELOW", serial_below)
        check = runner.invoke(app, ["--config", str(config), "check", "--now", "2027-02-01T00:00Z"])
        out = tmp_path / label
        preview = runner.invoke(app, ["--config", str(config), "preview", "--out", str(out),
                                      "--now", "2027-02-01T00:00Z"])
        assert check.exit_code == 0 and preview.exit_code == 0, (check.output, preview.output)
        files = {path.name: path.read_bytes() for path in out.iterdir()}
        outputs[label] = (check.stdout, check.stderr, preview.stderr, files)
    assert outputs["workers"] == outputs["one process"]
    check_out, check_err, preview_err, files = outputs["workers"]
    assert "24 talks, 48 messages planned: 0 errors" in check_out
    assert len(files) == 48
    assert re.search(r"t03\.yaml:1: warning: announcement: the message is [\d.]+ KB, over the list's limit", check_err)
    assert "t03 announcement: the message is" in preview_err


@linux
def test_check_builds_one_message_of_each_kind_in_full_whichever_worker_has_it(tmp_path, monkeypatch, two_workers):
    def failing_invite(config, talk, *, method, sequence, now, sequences=()):
        raise AnnouncerError(f"no invite for {talk.id}")

    monkeypatch.setattr("announcer.compose.message.build_invite", failing_invite)
    config = write_series(tmp_path, many_talks(24, oversized=False))
    check = runner.invoke(app, ["--config", str(config), "check", "--now", "2027-02-01T00:00Z"])
    assert check.exit_code == 1
    errors = [line.split(": ", 1)[1] for line in check.stderr.splitlines()]
    assert errors == ["announcement: no invite for t00", "reminder: no invite for t00"]
