"""Running a batch of Dask tasks: submit, watch (deadlines, paused workers), gather in order.

Used by the day (one task per land tile) and by the static stack (one task per tile).
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import RunError, SmdownError


@dataclass(frozen=True)
class TaskLimits:
    """Watchdog limits of a batch of tasks (``cluster.task_timeout_s``,
    ``cluster.paused_timeout_s``)."""

    task_timeout_s: float | None = None
    paused_timeout_s: float | None = None
    poll_s: float = 0.5


class ResourceLimitError(RunError):
    """A task ran past its deadline or sat on a worker paused for memory; names the task
    (tile) and the limit."""


def _scheduler_address(client: Any) -> str:
    return str(getattr(getattr(client, "scheduler", None), "address", None) or "the scheduler")


def _lost_scheduler(client: Any, exc: BaseException | None = None) -> SmdownError:
    from pipeline.cluster import ClusterError

    why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return ClusterError(
        _scheduler_address(client), f"lost the connection to the Dask scheduler{why}"
    )


def _executing_keys(dask_worker: Any) -> list[str]:
    """Keys a worker is executing right now (run on every worker by ``client.run``)."""
    return [str(ts.key) for ts in dask_worker.state.executing]


def _mb(n: Any) -> str:
    return f"{float(n) / 1e6:,.0f} MB" if isinstance(n, int | float) and n else "?"


class _Watchdog:
    """Checks, every few polls, that each running task is within its deadline and that its
    worker is not paused for memory (``distributed.worker.memory.pause``) for too long."""

    def __init__(self, client: Any, limits: TaskLimits, names: dict[str, str], label: str):
        self.client = client
        self.limits = limits
        self.names = names  # future key -> task name (without its token)
        self.label = label
        self.running_since: dict[str, float] = {}
        self.paused_since: dict[str, float] = {}
        self.next_check = 0.0

    def check(self, pending: set[str]) -> None:
        lim = self.limits
        if lim.task_timeout_s is None and lim.paused_timeout_s is None:
            return
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + max(lim.poll_s, 1.0)
        try:
            processing = self.client.processing()
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
            # A worker that dies during the broadcast runs nothing: left out, not an error
            # (raising here named a killed worker as a lost scheduler).
            executing = (
                self.client.run(_executing_keys, on_error="ignore")
                if lim.task_timeout_s is not None
                else {}
            )
        except (OSError, TimeoutError) as exc:
            raise _lost_scheduler(self.client, exc) from exc
        where: dict[str, str] = {}
        for addr, keys in processing.items():
            for k in keys:
                if str(k) in pending:
                    where[str(k)] = addr
        # A task's deadline counts from when a worker starts executing it, not from when
        # the scheduler queued it there (a busy or starting worker is not a slow task).
        for addr, keys in executing.items():
            for k in keys:
                if k in pending:
                    where[k] = addr
                    self.running_since.setdefault(k, now)
        for addr, w in workers.items():
            if w.get("status") == "paused":
                self.paused_since.setdefault(addr, now)
            else:
                self.paused_since.pop(addr, None)
        if lim.task_timeout_s is not None:
            for k, since in self.running_since.items():
                if k in pending and now - since > lim.task_timeout_s:
                    raise ResourceLimitError(
                        f"{self.label}: task {self.names[k]} still running on "
                        f"{where.get(k, '?')} after cluster.task_timeout_s = "
                        f"{lim.task_timeout_s:g} s; cancelled"
                    )
        if lim.paused_timeout_s is not None and workers:
            stuck = [a for a, t in self.paused_since.items() if now - t > lim.paused_timeout_s]
            all_paused = len(stuck) == len(workers)
            for addr in stuck:
                mine = [k for k, a in where.items() if a == addr]
                if mine or all_paused:
                    k = (mine or sorted(pending))[0]
                    limit = _mb(workers.get(addr, {}).get("memory_limit"))
                    raise ResourceLimitError(
                        f"{self.label}: task {self.names.get(k, k)} cannot run: worker {addr} "
                        f"paused for memory (memory_limit {limit}, cluster.memory_limit) for "
                        f"more than cluster.paused_timeout_s = {lim.paused_timeout_s:g} s; "
                        "give workers more memory or use smaller tiles"
                    )


def gather_tasks(
    client: Any,
    func: Callable[..., Any],
    args: Sequence[tuple[Any, ...]],
    keys: Sequence[str],
    *,
    label: str,
    limits: TaskLimits | None = None,
) -> list[Any]:
    """Submit one task per argument tuple (unique keys) and gather results in order.

    Shows a rich progress bar on a terminal; the first failure cancels the rest
    and raises ``RunError`` naming the task (our own errors keep their message).
    ``limits``: a task running longer than ``task_timeout_s``, or waiting on a
    worker paused for memory longer than ``paused_timeout_s``, cancels the batch
    with ``ResourceLimitError`` naming the task and the limit (never a hang). A lost
    scheduler is ``ClusterError`` naming its address.
    ``client=None`` runs the tasks one after the other in this process (debugging,
    benchmarks, and the single-process reference of the parity tests).
    """
    if client is None:
        out = []
        for a, k in zip(args, keys, strict=True):
            try:
                out.append(func(*a))
            except SmdownError:
                raise
            except Exception as exc:
                raise RunError(f"{label}: task {k} failed: {type(exc).__name__}: {exc}") from exc
        return out

    from distributed.comm.core import CommClosedError

    token = uuid.uuid4().hex[:8]
    try:
        futures = [
            client.submit(func, *a, key=f"{k}-{token}", pure=False)
            for a, k in zip(args, keys, strict=True)
        ]
    except (OSError, CommClosedError) as exc:
        raise _lost_scheduler(client, exc) from exc
    index = {str(f.key): i for i, f in enumerate(futures)}
    by_key = {str(f.key): f for f in futures}
    names = {str(f.key): str(f.key).rsplit("-", 1)[0] for f in futures}
    limits = limits or TaskLimits()
    watchdog = _Watchdog(client, limits, names, label)
    results: list[Any] = [None] * len(futures)
    pending = set(by_key)
    progress = None
    if sys.stderr.isatty():
        from rich.progress import Progress

        progress = Progress(transient=True)
        progress.start()
        bar = progress.add_task(label, total=len(futures))
    try:
        while pending:
            done = [k for k in pending if by_key[k].done()]
            if not done:
                if client.status not in ("running", "connecting", "newly-created"):
                    raise _lost_scheduler(client)
                watchdog.check(pending)
                time.sleep(min(limits.poll_s, 0.2))
                continue
            for k in sorted(done, key=index.__getitem__):
                fut = by_key[k]
                pending.discard(k)
                if fut.status != "finished":
                    if fut.status != "error":  # cancelled or lost: the scheduler went away
                        raise _lost_scheduler(client)
                    try:
                        error = fut.exception()
                    except Exception as exc:
                        raise _lost_scheduler(client, exc) from exc
                    if isinstance(error, CommClosedError | OSError) and not isinstance(
                        error, SmdownError
                    ):
                        raise _lost_scheduler(client, error)
                    if isinstance(error, SmdownError):
                        raise error
                    raise RunError(
                        f"{label}: task {names[k]} failed: {type(error).__name__}: {error}"
                    )
                try:
                    results[index[k]] = fut.result()
                except (OSError, CommClosedError) as exc:
                    raise _lost_scheduler(client, exc) from exc
                if progress is not None:
                    progress.advance(bar)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(futures)
        raise
    finally:
        if progress is not None:
            progress.stop()
    return results
