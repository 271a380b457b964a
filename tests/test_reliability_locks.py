"""Lock files that are damaged or half-written: reported with their path, judged by the stale
rules, never a traceback; and a lock file never exists without its whole content."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from pipeline.cube import LockHeldError, hold_lock
from pipeline.cube import lock as lockmod
from pipeline.cube.layout import StoreSpec


def _spec(tmp_path: Path) -> StoreSpec:
    return StoreSpec(str(tmp_path / ".locks" / "c.2020-06-01.lock"))


def _plant(spec: StoreSpec, data: bytes, age_s: float = 0.0) -> None:
    os.makedirs(os.path.dirname(spec.url), exist_ok=True)
    Path(spec.url).write_bytes(data)
    if age_s:
        t = time.time() - age_s
        os.utime(spec.url, (t, t))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe\x00garbage\x80\x81", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"", "empty"),
    ],
)
def test_garbage_lock_is_reported_with_its_path_and_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
) -> None:
    spec = _spec(tmp_path)
    _plant(spec, content, age_s=60)  # older than the write grace
    with caplog.at_level(logging.WARNING, logger="pipeline.cube.lock"):
        with hold_lock(spec, "day 2020-06-01") as info:
            assert json.loads(Path(spec.url).read_text())["token"] == info.token
    lines = [r.getMessage() for r in caplog.records]
    assert any(spec.url in m and "malformed lock" in m and problem in m for m in lines), lines
    assert all("\n" not in m for m in lines)
    assert not os.path.exists(spec.url)


def test_lock_with_non_numeric_pid_and_started_follows_the_stale_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _spec(tmp_path)
    # A live-looking holder on another host with unusable fields: its age is the file's.
    bad = {"host": "other-host", "pid": "12x", "started": "yesterday", "token": "t"}
    _plant(spec, json.dumps(bad).encode())
    with pytest.raises(LockHeldError, match=r"c\.2020-06-01\.lock.*pid 12x.*other-host.*since \?"):
        with hold_lock(spec, "day", stale_after_s=3600):
            pass
    assert os.path.exists(spec.url)  # young and unidentifiable within the grace: kept
    # The same lock, older than stale_after_s by its file's time, is stale and taken over.
    _plant(spec, json.dumps(bad).encode(), age_s=7200)
    with caplog.at_level(logging.WARNING, logger="pipeline.cube.lock"):
        with hold_lock(spec, "day", stale_after_s=3600):
            pass
    msgs = " | ".join(r.getMessage() for r in caplog.records)
    assert "pid '12x' is not a process id" in msgs and "started 'yesterday'" in msgs
    assert "removing stale lock" in msgs
    # Same host, numeric pid of a dead process, started not a number: stale (dead pid).
    dead = {"host": socket.gethostname(), "pid": 2**22 + 4321, "started": None}
    _plant(spec, json.dumps(dead).encode())
    with hold_lock(spec, "day", stale_after_s=3600):
        pass
    # Same host, a live pid (ours), started not a number, fresh file: held.
    live = {"host": socket.gethostname(), "pid": os.getpid(), "started": "soon"}
    _plant(spec, json.dumps(live).encode())
    with pytest.raises(LockHeldError, match=f"pid {os.getpid()}"):
        with hold_lock(spec, "day", stale_after_s=3600):
            pass


def test_lock_file_never_exists_without_its_whole_content(tmp_path: Path) -> None:
    """A reader polling the lock path while locks are taken and released never sees an
    empty or partial file (the old O_EXCL-then-write left an empty-file window)."""
    spec = _spec(tmp_path)
    seen_bad: list[bytes] = []
    n_seen = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal n_seen
        while not stop.is_set():
            try:
                data = Path(spec.url).read_bytes()
            except FileNotFoundError:
                continue
            n_seen += 1
            holder = lockmod._parse_holder(data)
            if holder.problem or holder.token is None:
                seen_bad.append(data)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(300):
            with hold_lock(spec, "day"):
                pass
    finally:
        stop.set()
        t.join()
    assert n_seen > 0 and seen_bad == []
    # And the link target is complete before it appears: no temporary file is left behind.
    assert sorted(os.listdir(os.path.dirname(spec.url))) == []


def test_lock_release_survives_a_lock_replaced_by_garbage(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    with hold_lock(spec, "day"):
        Path(spec.url).write_bytes(b"\x00\xff")  # someone damaged it while we held it
    assert Path(spec.url).read_bytes() == b"\x00\xff"  # not ours any more: left alone
