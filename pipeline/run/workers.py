"""Per-worker-process caches of the daily run: the plan's catalog and ensemble, opened once.

``models.runtime`` and ``grids.resample`` keep their own per-process caches.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from pipeline.errors import RunError
from pipeline.run.plan import RunPlan

_LOCK = threading.Lock()
_CATALOGS: dict[tuple[Any, str], Any] = {}
_MODELS: dict[tuple[Any, str, str], Any] = {}


def worker_catalog(plan: RunPlan) -> Any:
    """The plan's source catalog, opened once per process (and configuration)."""
    key = (plan.catalog_factory, plan.sources.model_dump_json())
    with _LOCK:
        cat = _CATALOGS.get(key)
        if cat is None:
            cat = plan.catalog_factory(plan.sources)
            _CATALOGS[key] = cat
    return cat


def worker_model(plan: RunPlan) -> Any:
    """The plan's ensemble, loaded once per process; refuses a different manifest hash."""
    key = (plan.model_loader, plan.model_dir, plan.model.manifest_hash)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = plan.model_loader(plan.model_dir)
            if str(model.manifest_hash) != plan.model.manifest_hash:
                raise RunError(
                    f"{plan.model_dir}: model changed during the run (manifest hash "
                    f"{str(model.manifest_hash)[:12]} != {plan.model.manifest_hash[:12]})"
                )
            _MODELS[key] = model
    return model


def clear_worker_caches() -> None:
    """Forget cached catalogs, models and sampled inputs of this process (tests)."""
    from pipeline.run.fallback import clear_cache

    with _LOCK:
        _CATALOGS.clear()
        _MODELS.clear()
    clear_cache()


def sources_by_variable(sources: Any) -> dict[str, Any]:
    """{variable: Source} of ``sources()``: a mapping, or sources with ``.variable``."""
    if isinstance(sources, Mapping):
        return dict(sources)
    return {s.variable: s for s in sources}


def catalog_sources(plan: RunPlan) -> dict[str, Any]:
    """{variable: Source} of the plan's catalog for its mode (cached per worker process)."""
    return sources_by_variable(worker_catalog(plan).sources(plan.mode))
