"""The plan of a run: output grid, tiling, chunking, stores, model and inputs (a small value).

Built once by the driver and shipped with every tile task. Tiles are
``grid.tile_size`` squares from the grid corner; the cube's spatial chunks are
``output.chunk_size`` squares (default: the largest divisor of the tile size
not above 1024), so every tile is a whole number of chunks and no two tasks
write one chunk (asserted here and again at every write).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from grids import Grid
from grids.errors import GridError
from grids.tiling import Tile, TileScheme
from models.features import FEATURE_NAMES
from models.variables import ANY_FAMILY, variables
from pipeline.config import Settings, SourcesConfig
from pipeline.cube import CubeLayout, ModelInfo, StoreSpec, software_version, store_name
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

Mode = Literal["maps", "training"]
MAX_DEFAULT_CHUNK = 1024


def default_chunk(tile_size: int) -> int:
    """The largest divisor of ``tile_size`` not above 1024 pixels (1200 -> 600, 2400 -> 800)."""
    return max(d for d in range(1, min(tile_size, MAX_DEFAULT_CHUNK) + 1) if tile_size % d == 0)


def output_grid(name: str, region: tuple[float, float, float, float] | None) -> Grid:
    """The named grid cropped to ``region`` (west, south, east, north, degrees); None: whole."""
    from grids.named import named_grid

    grid = named_grid(name)
    if region is None:
        return grid
    bounds = region
    if not grid.is_geographic:
        from pyproj import Transformer

        tr = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
        bounds = tuple(tr.transform_bounds(*region, densify_pts=21))  # type: ignore[assignment]
    try:
        return grid.crop(bounds)
    except GridError as exc:
        w, s, e, n = (round(v, 3) for v in grid.bounds)
        raise ConfigError(
            f"grid.region {list(region)} does not intersect grid {name!r} "
            f"(bounds {w}, {s}, {e}, {n}); give [west, south, east, north] inside it"
        ) from exc


def resolve_model_dir(settings: Settings, model_dir: str | Path | None = None) -> Path:
    """``--model DIR``, else ``models.dir/<arch>``, else ``models.dir`` when it holds a manifest."""
    if model_dir is not None:
        return Path(model_dir)
    base = Path(settings.models.dir)
    nested = base / settings.models.arch
    if (nested / "manifest.json").is_file() or not (base / "manifest.json").is_file():
        return nested
    return base


def default_model_loader(model_dir: str) -> Any:
    """The production ensemble: ``models.runtime.Ensemble`` with one intra-op thread."""
    from models.runtime import Ensemble

    return Ensemble.load(model_dir, intra_op_threads=1)


def default_catalog(sources: SourcesConfig) -> Any:
    """The production covariate readers for ``[sources]``."""
    from pipeline.sources import Catalog

    return Catalog.from_settings(sources)


@dataclass(frozen=True)
class PublishRules:
    """How a day is published: lock waits and the final/provisional rule (``[output]``), and
    the task watchdog limits (``[cluster]``). Part of the plan: ``run_day`` reads them
    nowhere else."""

    lock_timeout_s: float = 0.0
    lock_stale_after_s: float = 12 * 3600.0
    min_coverage_final: float = 0.5
    final_after_days: int = 3
    task_timeout_s: float | None = 3600.0
    paused_timeout_s: float | None = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PublishRules:
        out, cl = settings.output, settings.cluster
        return cls(
            lock_timeout_s=out.lock_timeout_s,
            lock_stale_after_s=out.lock_stale_after_s,
            min_coverage_final=out.min_coverage_final,
            final_after_days=out.final_after_days,
            task_timeout_s=cl.task_timeout_s,
            paused_timeout_s=cl.paused_timeout_s,
        )


@dataclass(frozen=True)
class RunPlan:
    """Everything a tile task needs; small and picklable (sent with every task)."""

    grid: Grid
    grid_name: str
    tile_size: int
    layout: CubeLayout
    cube: StoreSpec
    static: StoreSpec
    root: StoreSpec
    model_dir: str
    model: ModelInfo
    sources: SourcesConfig
    mode: Mode = "maps"
    # The day whose land cover (MCD12Q1, yearly) the static stack uses; set per day.
    static_date: dt.date | None = None
    catalog_factory: Callable[[SourcesConfig], Any] = field(default=default_catalog)
    model_loader: Callable[[str], Any] = field(default=default_model_loader)
    publish: PublishRules = field(default_factory=PublishRules)
    # The model's inputs in its order (its manifest's feature set; the paper's nine by default).
    feature_names: tuple[str, ...] = FEATURE_NAMES

    @property
    def scheme(self) -> TileScheme:
        return TileScheme.square(self.grid, self.tile_size)

    def tiles(self) -> list[Tile]:
        return list(self.scheme.tiles())

    def tile(self, iy: int, ix: int) -> Tile:
        return self.scheme.tile(iy, ix)

    def static_for(self, landcover_year: int, date: dt.date) -> RunPlan:
        """This plan reading the static stack of one land-cover year (built from ``date``)."""
        spec = self.root.child(f"static-{self.grid.key()[:12]}-lc{landcover_year}.zarr")
        return replace(self, static=spec, static_date=date)

    @property
    def store_name(self) -> str:
        return self.cube.url.rstrip("/").rsplit("/", 1)[-1]


def build_plan(
    settings: Settings,
    *,
    model_dir: str | Path | None = None,
    mode: Mode = "maps",
    catalog_factory: Callable[[SourcesConfig], Any] | None = None,
    model_loader: Callable[[str], Any] | None = None,
    grid: Grid | None = None,
) -> RunPlan:
    """The plan for ``settings``: loads the model once on the driver for its manifest hash.

    ``grid`` overrides the configured grid/region (tests); loaders/catalog
    factories default to the production ones.
    """
    loader = model_loader or default_model_loader
    mdir = resolve_model_dir(settings, model_dir)
    ensemble = loader(str(mdir))
    manifest_hash = str(ensemble.manifest_hash)
    check_family(getattr(ensemble, "manifest", None), settings.sources, mdir)
    arch = str(getattr(getattr(ensemble, "manifest", None), "arch", settings.models.arch))
    target = grid if grid is not None else output_grid(settings.grid.name, settings.grid.region)
    tile_size = settings.grid.tile_size
    chunk = settings.output.chunk_size or default_chunk(tile_size)
    layout = CubeLayout(target, chunk, settings.output.first_year)
    scheme = TileScheme.square(target, tile_size)
    try:
        scheme.assert_aligned(layout.chunks)
    except GridError as exc:
        raise ConfigError(
            f"output.chunk_size {chunk} must divide grid.tile_size {tile_size}: {exc}"
        ) from exc
    root = StoreSpec(_absolute_store(settings.output.store), dict(settings.output.storage_options))
    model = ModelInfo(arch, manifest_hash, software_version(), settings.grid.name)
    return RunPlan(
        grid=target,
        grid_name=settings.grid.name,
        tile_size=tile_size,
        layout=layout,
        cube=root.child(store_name(arch, manifest_hash)),
        static=root.child(f"static-{target.key()[:12]}.zarr"),
        root=root,
        model_dir=str(mdir),
        model=model,
        sources=settings.sources,
        mode=mode,
        catalog_factory=catalog_factory or default_catalog,
        model_loader=loader,
        publish=PublishRules.from_settings(settings),
        feature_names=tuple(getattr(ensemble, "feature_names", FEATURE_NAMES)),
    )


_SHARED = frozenset(
    p[m] for v in variables() if (p := v.products.get(ANY_FAMILY)) for m in ("training", "maps")
)
"""Products every family shares (SMAP, CHIRPS, soils ...): not worth naming in the refusal."""


def check_family(manifest: Any, sources: SourcesConfig, model_dir: object) -> None:
    """Refuse (one line) a model trained on another product family than ``[sources] family``.

    A manifest that records no family (trained before families existed, or on a table
    without metadata) is accepted; ``[sources] allow_family_mismatch = true`` accepts any.
    """
    trained = getattr(manifest, "family", None)
    if trained is None or trained == sources.family:
        return
    if sources.allow_family_mismatch:
        log.warning(
            "model %s was trained on %s inputs, fed %s inputs (allow_family_mismatch)",
            model_dir,
            trained,
            sources.family,
        )
        return
    used = ", ".join(sorted(set(getattr(manifest, "products", {}).values()) - _SHARED))
    raise ConfigError(
        f"sources.family: the model in {model_dir} was trained on {trained} inputs "
        f"({used or 'products not recorded'}) but [sources] family is {sources.family}; "
        "retrain on a table of this family or set [sources] allow_family_mismatch = true"
    )


def tile_bounds_deg(tile: Tile) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of a tile's outer edges (sources take degrees)."""
    g = tile.grid
    if g.is_geographic:
        return g.bounds
    from pyproj import Transformer

    tr = Transformer.from_crs(g.crs, "EPSG:4326", always_xy=True)
    w, s, e, n = tr.transform_bounds(*g.bounds, densify_pts=21)
    return float(w), float(s), float(e), float(n)


def _absolute_store(store: str) -> str:
    """``output.store`` with a relative local path resolved against the working directory,
    said in one warning line (the plan travels to workers whose directory differs)."""
    store = store.rstrip("/") or store
    if "://" in store or os.path.isabs(store):
        return store
    absolute = os.path.abspath(store)
    log.warning(
        "output.store %r is a relative path: resolved against the working directory to %s",
        store,
        absolute,
    )
    return absolute
