"""Create or attach the Dask cluster the daily run uses.

- default (``kind = "local"``): a ``LocalCluster`` of ``n_workers`` processes with
  ``threads_per_worker`` threads (1: onnxruntime runs single-threaded in a task);
- an address (``--scheduler tcp://host:8786`` or ``kind = "address"``): attach to a
  running scheduler; an unreachable one fails within ``connect_timeout_s`` with one
  line naming the address;
- ``kind = "gateway"`` / ``"kubernetes"``: build the cluster with dask-gateway or
  dask-kubernetes (imported lazily; a clear error when the extra is not installed);
  ``options`` are passed to their constructors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from pipeline.config import ClusterConfig
from pipeline.errors import SmdownError

log = logging.getLogger(__name__)


class ClusterError(SmdownError):
    """The cluster cannot be created or reached; names the address or kind."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


def _connect(address: str, timeout_s: float) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            address, f"no Dask scheduler reachable within {timeout_s:g} s ({type(exc).__name__})"
        ) from exc
    except ValueError as exc:  # malformed address
        raise ClusterError(address, f"not a scheduler address ({exc})") from exc


def _local_cluster(cfg: ClusterConfig) -> Any:
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=cfg.n_workers,
        threads_per_worker=cfg.threads_per_worker,
        processes=True,
        memory_limit=cfg.memory_limit,
        dashboard_address=":0",  # a free port: several clusters may share one machine
        scheduler_kwargs={"dashboard": bool(cfg.dashboard)},
        silence_logs=logging.WARNING,
    )


def _gateway_cluster(cfg: ClusterConfig) -> Any:
    try:
        from dask_gateway import Gateway  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ClusterError(
            "cluster.kind=gateway", "dask-gateway is not installed (pip install dask-gateway)"
        ) from exc
    gateway = Gateway(cfg.address) if cfg.address else Gateway()
    cluster = gateway.new_cluster(**dict(cfg.options))
    cluster.scale(cfg.n_workers)
    return cluster


def _kubernetes_cluster(cfg: ClusterConfig) -> Any:
    try:
        from dask_kubernetes.operator import KubeCluster  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ClusterError(
            "cluster.kind=kubernetes",
            "dask-kubernetes is not installed (pip install dask-kubernetes)",
        ) from exc
    options = {"name": "smdown", **dict(cfg.options)}
    return KubeCluster(n_workers=cfg.n_workers, **options)


@contextmanager
def open_client(cfg: ClusterConfig, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for the configured cluster, closed (and the cluster shut
    down when we created it) on exit. ``scheduler`` overrides the configuration."""
    from distributed import Client

    address = scheduler or (cfg.address if cfg.kind == "address" else None)
    if cfg.kind == "address" and not address:
        raise ClusterError("cluster.address", "kind = 'address' needs an address")
    with ExitStack() as stack:
        if address:
            client = _connect(address, cfg.connect_timeout_s)
        else:
            factory = {
                "local": _local_cluster,
                "gateway": _gateway_cluster,
                "kubernetes": _kubernetes_cluster,
            }[cfg.kind]
            cluster = factory(cfg)
            stack.callback(cluster.close)
            client = Client(cluster, set_as_default=False)
        stack.callback(client.close)
        link = getattr(client, "dashboard_link", None)
        n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        log.info(
            "Dask cluster %s: %d worker(s)%s",
            address or cfg.kind,
            n,
            f", dashboard {link}" if link and cfg.dashboard else "",
        )
        yield client
