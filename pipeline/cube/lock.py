"""Advisory lock files so two ``smdown run`` never interleave on one store and day.

Lock files live beside the stores, never inside them:
``<output.store>/.locks/<store name>.<what>.lock`` holding JSON
``{"host", "pid", "started", "token", "what"}``. A lock file appears with its
whole content at once, never empty: locally the JSON is written to a unique
temporary file which is then hard-linked to the lock path (``link`` fails when
the path exists: an atomic exclusive create of a complete file). Only on a
local file system without hard links is the lock created with ``O_EXCL`` and
then written; a lock file that is empty or partial and younger than
``WRITE_GRACE_S`` is taken for one being written there and waited for. On
object stores it is an exclusive create carrying the content in the same
request,
``fs.pipe_file(..., mode="create")``: on S3 a conditional PUT (``If-None-Match:
*``), atomic on AWS S3 (since 2024-08) and on S3-compatible servers that honour
the header (MinIO, Ceph RGW, R2); a store that rejects conditional writes fails
with ``LockError`` naming the lock. The lock is read back and its token checked
afterwards, which also catches backends whose "create" is a plain
exists-then-write. Locks stay advisory (a process that ignores them is not
stopped), which is why the Kubernetes CronJob also forbids concurrent runs.

A lock is stale (removed with a warning) when its host is this host and its
PID is not running, or when it is older than ``stale_after_s``. A lock file
that cannot be read or parsed (garbage bytes, not JSON, ``pid``/``started``
that are not numbers, no ``host``) is reported with its path in one warning
line and judged by the same rules with what it tells: its age is its file's
modification time when ``started`` is unusable, and a holder that cannot be
identified (no usable host and pid) is not a run of smdown, which writes
every lock complete, so it is stale once older than ``WRITE_GRACE_S``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


WRITE_GRACE_S = 5.0
"""Age under which an unreadable lock is taken for one being written (no-hard-link file systems)."""


@dataclass(frozen=True)
class Holder:
    """What a lock file says about its holder; ``problem`` is set when it is malformed."""

    host: str | None
    pid: int | None
    started: float | None
    token: str | None
    problem: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Host, pid, started: the usable values, else what the file holds."""
        return {
            "host": self.host if self.host is not None else self.raw.get("host", "?"),
            "pid": self.pid if self.pid is not None else self.raw.get("pid", "?"),
            "started": self.started,
        }


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float) and math.isfinite(v):
        return float(v)
    return None


def _parse_holder(data: bytes) -> Holder:
    """A ``Holder`` from the bytes of a lock file; never raises."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return Holder(None, None, None, None, f"not UTF-8 text (byte {exc.start})")
    except json.JSONDecodeError as exc:
        what = "empty" if not data.strip() else f"not JSON ({exc.msg}, char {exc.pos})"
        return Holder(None, None, None, None, what)
    if not isinstance(obj, dict):
        return Holder(None, None, None, None, f"not a JSON object ({type(obj).__name__})")
    problems = []
    host = obj.get("host")
    if not isinstance(host, str) or not host:
        problems.append(f"host {host!r} is not a host name")
        host = None
    pid_raw = obj.get("pid")
    pid = int(pid_raw) if isinstance(pid_raw, int) and not isinstance(pid_raw, bool) else None
    if pid is None or pid <= 0:
        problems.append(f"pid {pid_raw!r} is not a process id")
        pid = None
    started = _number(obj.get("started"))
    if started is None:
        problems.append(f"started {obj.get('started')!r} is not a time")
    token = obj.get("token")
    return Holder(
        host,
        pid,
        started,
        token if isinstance(token, str) else None,
        "; ".join(problems),
        obj,
    )


def _is_stale(holder: Holder, age_s: float | None, stale_after_s: float) -> bool:
    """The stale rules, with what the lock tells (``age_s``: its file's age, when known)."""
    started_age = time.time() - holder.started if holder.started is not None else age_s
    if started_age is not None and started_age > stale_after_s:
        return True
    if holder.host == socket.gethostname() and holder.pid is not None:
        import psutil

        return not psutil.pid_exists(holder.pid)
    if holder.host is None or holder.pid is None:
        # Nobody identifiable holds it: smdown writes its locks complete, so this one
        # is garbage, or one being written on a file system without hard links.
        return age_s is None or age_s > WRITE_GRACE_S
    return False


def _read_bytes(spec: StoreSpec) -> tuple[bytes, float | None] | None:
    """The lock's bytes and its file's age in seconds (None: no lock file)."""
    try:
        if spec.is_local:
            with open(spec.local_path, "rb") as f:
                data = f.read()
                mtime: float | None = os.fstat(f.fileno()).st_mtime
        else:
            fs, path = spec.filesystem()
            data = fs.cat_file(path)
            try:
                mtime = fs.modified(path).timestamp()
            except (OSError, NotImplementedError, AttributeError, ValueError):
                mtime = None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError(
            str(spec), f"cannot read the lock file ({type(exc).__name__}: {exc})"
        ) from exc
    return data, (max(0.0, time.time() - mtime) if mtime is not None else None)


def _read_holder(spec: StoreSpec) -> Holder | None:
    got = _read_bytes(spec)
    return None if got is None else _parse_holder(got[0])


def _create_local(path: str, payload: bytes, token: str) -> bool:
    """Exclusive create of a complete file: write a unique temporary file, hard-link it."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{token}.tmp"
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # No hard links here: exclusive create, then write (readers wait WRITE_GRACE_S).
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _try_create(spec: StoreSpec, info: LockInfo) -> bool:
    payload = info.to_json().encode("utf-8")
    if spec.is_local:
        try:
            return _create_local(spec.local_path, payload, info.token)
        except OSError as exc:
            raise LockError(
                str(spec), f"cannot create the lock file ({type(exc).__name__}: {exc})"
            ) from exc
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
    return bool(holder and holder.token == info.token)


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
        got = _read_bytes(spec)
        if got is None:
            continue  # released between our attempt and the read: try again
        holder, age_s = _parse_holder(got[0]), got[1]
        if holder.problem:
            log.warning(
                "%s: malformed lock file (%s); judged by the stale rules", spec, holder.problem
            )
        if _is_stale(holder, age_s, stale_after_s):
            log.warning("removing stale lock %s (held by %s)", spec, holder.as_dict())
            _remove(spec)
            continue
        if time.monotonic() >= deadline:
            raise LockHeldError(str(spec), holder.as_dict(), what)
        time.sleep(poll_s)
    try:
        yield info
    finally:
        with contextlib.suppress(LockError):
            mine = _read_holder(spec)
            if mine is not None and mine.token == info.token:
                _remove(spec)
