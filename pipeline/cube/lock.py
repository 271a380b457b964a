"""Advisory lock files so two ``smdown run`` never interleave on one store and day.

Lock files live beside the stores, never inside them:
``<output.store>/.locks/<store name>.<what>.lock`` holding JSON
``{"host", "pid", "started", "token", "what"}``. Locally a lock is taken with
``O_CREAT | O_EXCL`` (atomic). On object stores it is an exclusive create,
``fs.pipe_file(..., mode="create")``: on S3 a conditional PUT (``If-None-Match:
*``), atomic on AWS S3 (since 2024-08) and on S3-compatible servers that honour
the header (MinIO, Ceph RGW, R2); a store that rejects conditional writes fails
with ``LockError`` naming the lock. The lock is read back and its token checked
afterwards, which also catches backends whose "create" is a plain
exists-then-write. Locks stay advisory (a process that ignores them is not
stopped), which is why the Kubernetes CronJob also forbids concurrent runs.

A lock is stale (removed with a warning) when its host is this host and its
PID is not running, or when it is older than ``stale_after_s``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.cube.layout import StoreSpec
from pipeline.errors import RunError

log = logging.getLogger(__name__)


class LockHeldError(RunError):
    """Another live process holds the lock of this store/day; names the lock and holder."""

    def __init__(self, lock_path: str, holder: dict[str, Any], what: str) -> None:
        self.lock_path = lock_path
        self.holder = holder
        started = holder.get("started")
        since = (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(started)))
            if isinstance(started, int | float)
            else "?"
        )
        super().__init__(
            f"{lock_path}: {what} is being written by pid {holder.get('pid', '?')} on host "
            f"{holder.get('host', '?')} since {since}; wait for it, or delete the lock file "
            "if that process is gone"
        )


class LockError(RunError):
    """A lock file cannot be created or read on its store (not: held by another run)."""

    def __init__(self, lock_path: str, problem: str) -> None:
        self.lock_path = lock_path
        self.problem = problem
        super().__init__(f"{lock_path}: {problem}")


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock."""

    host: str
    pid: int
    started: float
    token: str
    what: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "host": self.host,
                "pid": self.pid,
                "started": self.started,
                "token": self.token,
                "what": self.what,
            }
        )


def lock_path(root: StoreSpec, store_name: str, what: str) -> StoreSpec:
    """Where the lock for ``what`` (e.g. ``2020-06-01`` or ``metadata``) of a store lives."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in what)
    return root.child(f".locks/{store_name}.{safe}.lock")


def _is_stale(holder: dict[str, Any], stale_after_s: float) -> bool:
    started = holder.get("started")
    if isinstance(started, int | float) and time.time() - float(started) > stale_after_s:
        return True
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        if isinstance(pid, int):
            import psutil

            return not psutil.pid_exists(pid)
    return False


def _read_holder(spec: StoreSpec) -> dict[str, Any] | None:
    try:
        if spec.is_local:
            with open(spec.local_path, encoding="utf-8") as f:
                text = f.read()
        else:
            fs, path = spec.filesystem()
            text = fs.cat_file(path).decode("utf-8")
    except (FileNotFoundError, OSError):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {"corrupt": text[:80]}
    return data if isinstance(data, dict) else {"corrupt": text[:80]}


def _try_create(spec: StoreSpec, info: LockInfo) -> bool:
    payload = info.to_json().encode("utf-8")
    if spec.is_local:
        path = spec.local_path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        return True
    fs, path = spec.filesystem()
    try:
        # Exclusive create: a conditional PUT (If-None-Match: *) on S3, never an overwrite.
        fs.pipe_file(path, payload, mode="create")
    except FileExistsError:
        return False
    except OSError as exc:
        raise LockError(
            str(spec),
            f"cannot create the lock file ({type(exc).__name__}: {exc}); the store must "
            "support exclusive creates (S3 conditional writes, If-None-Match)",
        ) from exc
    holder = _read_holder(spec)
    return bool(holder and holder.get("token") == info.token)


def _remove(spec: StoreSpec) -> None:
    try:
        if spec.is_local:
            os.remove(spec.local_path)
        else:
            fs, path = spec.filesystem()
            fs.rm_file(path)
    except FileNotFoundError:
        pass


@contextmanager
def hold_lock(
    spec: StoreSpec,
    what: str,
    *,
    timeout_s: float = 0.0,
    stale_after_s: float = 12 * 3600.0,
    poll_s: float = 0.5,
) -> Iterator[LockInfo]:
    """Hold the lock file ``spec`` while the block runs.

    Waits up to ``timeout_s`` seconds for a live holder (0: fail at once) and
    then raises ``LockHeldError``; removes stale locks (see module docstring).
    """
    info = LockInfo(socket.gethostname(), os.getpid(), time.time(), uuid.uuid4().hex, what)
    deadline = time.monotonic() + max(0.0, timeout_s)
    while True:
        if _try_create(spec, info):
            break
        holder = _read_holder(spec)
        if holder is None:
            continue  # released between our attempt and the read: try again
        if _is_stale(holder, stale_after_s) or "corrupt" in holder:
            log.warning("removing stale lock %s (held by %s)", spec, holder)
            _remove(spec)
            continue
        if time.monotonic() >= deadline:
            raise LockHeldError(str(spec), holder, what)
        time.sleep(poll_s)
    try:
        yield info
    finally:
        holder = _read_holder(spec)
        if holder is not None and holder.get("token") == info.token:
            _remove(spec)
