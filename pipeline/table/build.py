"""Pair every in-situ (site, day) with the nine inputs and three references (issue 7).

Sampling goes through exactly the code path of the daily maps: for each date
each source's native raster is read over the bounds of a group of sites
(``source.native(date, bounds)``), and each site's row is
``pipeline.sources.build_feature_block(natives, target_grid.window(r, r+1, c, c+1))``,
the function every map tile calls on its own window. Nearest-neighbour indices
are computed against each product's whole lattice, so a station's pixel gets
the same values bit for bit whichever window was read around it.

Sites are grouped by blocks of ``[table] group_pixels`` target pixels per
side, and each source is read once per group and date over the bounds of that
group's sites (one read per date over all sites when they fit in one block,
as in a synthetic world). A native raster is reused while the file(s) serving
it stay the same (8-day composites, yearly land cover, static layers), so
static layers are read once per group.

Bad input is counted and reported, never fatal: sites outside the target
grid, days with no SMAP file at all, static layers that are missing, sites a
source does not cover (no valid value on any of the site's days), and rows
with any missing input. ``TableReport.steps`` holds the row count after each
step, in the order they are applied.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from grids import Grid
from models.features import (
    CATEGORICALS,
    CATEGORY_TABLES,
    DEFAULT_FEATURE_SET,
    FEATURE_NAMES,
    FeatureSet,
    feature_names,
)
from models.variables import variables
from pipeline.config import TableConfig
from pipeline.errors import TableError
from pipeline.sources import Catalog, MissingInputError, NativeRaster, Provenance, Source
from pipeline.sources import build_feature_block as _build_feature_block
from pipeline.table.schema import COLUMNS, conform
from pipeline.table.splits import assign_splits
from pipeline.table.weights import weight_columns

log = logging.getLogger(__name__)

Mode = Literal["training", "maps"]
INPUTS: tuple[str, ...] = (*FEATURE_NAMES, *CATEGORICALS)
# Layers with one value for every day (no date, no padding), registry order (paper set).
STATIC_LAYERS: tuple[str, ...] = tuple(
    v.name
    for v in variables()
    if v.kind != "daily" and v.padding is None and v.in_set(DEFAULT_FEATURE_SET)
)


def inputs_of(feature_set: FeatureSet) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every input read, the static layers among them) of a table of ``feature_set``."""
    names = feature_names(feature_set)
    static = tuple(
        v.name
        for v in variables()
        if v.kind != "daily" and v.padding is None and v.in_set(feature_set)
    )
    return (*names, *CATEGORICALS), static


# The one feature-block builder: module attribute so a test can wrap it and prove the
# table calls the map tiles' function (never a copy of it).
build_feature_block = _build_feature_block

# Step names as printed.
S_READ = "in-situ site-days read"
S_GRID = "site inside the target grid"
S_SMAP = "day has a SMAP file"
S_STATIC = "static layers present"
S_INPUTS = "all inputs of the feature set present"
S_REFS = "texture, land cover and Koeppen class present"


@dataclass(frozen=True, slots=True)
class Step:
    """Rows left after one step of the build."""

    name: str
    rows: int
    sites: int


@dataclass(frozen=True)
class TableReport:
    """What the build kept, dropped and why (counts, never errors)."""

    steps: tuple[Step, ...]
    sites_outside_grid: tuple[str, ...]
    dates_without_smap: tuple[dt.date, ...]
    missing_static: dict[str, str]
    sites_without_coverage: dict[str, tuple[str, ...]]
    missing_rows_by_input: dict[str, int]
    unavailable_reads: dict[str, int]
    n_groups: int
    target_grid_key: str
    mode: str
    notes: tuple[str, ...] = ()
    family: str | None = None
    """Product family of the optical inputs (``[sources] family``); None: sources given."""
    products: dict[str, str] = field(default_factory=dict)
    """{variable: product} that served the table (the catalogue's, or each provenance's)."""
    landcover_years: dict[int, int] = field(default_factory=dict)
    """{MCD12Q1 year: rows}: the latest year on or before each row's day served it."""

    def lines(self) -> list[str]:
        """Human-readable lines: the step counts, then each kind of bad input."""
        out = [f"{s.rows:>10,d} rows {s.sites:>6,d} sites  {s.name}" for s in self.steps]
        if self.sites_outside_grid:
            out.append(
                f"{len(self.sites_outside_grid)} site(s) outside the target grid: "
                + _few(self.sites_outside_grid)
            )
        if self.dates_without_smap:
            out.append(
                f"{len(self.dates_without_smap)} day(s) without any SMAP file: "
                + _few([d.isoformat() for d in self.dates_without_smap])
            )
        for name, problem in sorted(self.missing_static.items()):
            out.append(f"static layer {name} missing: {problem}")
        for name, sites in sorted(self.sites_without_coverage.items()):
            out.append(f"{len(sites)} site(s) never covered by {name}: {_few(sites)}")
        missing = {k: v for k, v in self.missing_rows_by_input.items() if v}
        if missing:
            out.append(
                "rows missing each input: " + ", ".join(f"{k} {v}" for k, v in missing.items())
            )
        out.extend(self.notes)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (stored in the Parquet metadata)."""
        return {
            "steps": [{"name": s.name, "rows": s.rows, "sites": s.sites} for s in self.steps],
            "sites_outside_grid": list(self.sites_outside_grid),
            "dates_without_smap": [d.isoformat() for d in self.dates_without_smap],
            "missing_static": dict(self.missing_static),
            "sites_without_coverage": {k: list(v) for k, v in self.sites_without_coverage.items()},
            "missing_rows_by_input": dict(self.missing_rows_by_input),
            "unavailable_reads": dict(self.unavailable_reads),
            "n_groups": self.n_groups,
            "target_grid_key": self.target_grid_key,
            "mode": self.mode,
            "family": self.family,
            "products": dict(self.products),
            "landcover_years": {str(k): v for k, v in sorted(self.landcover_years.items())},
        }


@dataclass(frozen=True)
class TableResult:
    """The training table (docs/table-schema.md) and the report of its build."""

    table: pd.DataFrame = field(repr=False)
    report: TableReport


def _few(items: Any, n: int = 5) -> str:
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(str(i) for i in items[:n]) + more


def target_grid_for(grid_name: str, region: tuple[float, float, float, float] | None) -> Grid:
    """The maps' target grid: the named grid cropped to ``region`` (degrees) when given."""
    from grids.named import named_grid

    grid = named_grid(grid_name)
    if region is None:
        return grid
    if grid.crs != "EPSG:4326":
        from pyproj import Transformer

        t = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
        region = tuple(t.transform_bounds(*region, densify_pts=21))  # type: ignore[assignment]
    return grid.crop(region)  # type: ignore[arg-type]


def _sources_of(catalog: Catalog | Mapping[str, Source], mode: Mode) -> Mapping[str, Source]:
    if isinstance(catalog, Catalog):
        return catalog.sources(mode)
    return catalog


def _site_frame(daily: pd.DataFrame, sites: pd.DataFrame | None) -> pd.DataFrame:
    """One row per site of ``daily``: site_id, network, group, lat, lon.

    The site table's non-null values win over those repeated in the daily table.
    """
    need = {"site_id", "date", "sm"}
    if not need <= set(daily.columns):
        raise TableError(f"in-situ daily table lacks column(s) {sorted(need - set(daily.columns))}")
    ids = pd.Index(daily["site_id"].astype(str).unique(), name="site_id")
    first = daily.assign(site_id=daily["site_id"].astype(str)).drop_duplicates("site_id")
    first = first.set_index("site_id").reindex(ids)
    info = pd.DataFrame(index=ids)
    for c in ("network", "group", "lat", "lon"):
        info[c] = first[c] if c in first.columns else None
    if sites is not None and len(sites):
        s = sites.assign(site_id=sites["site_id"].astype(str)).drop_duplicates("site_id")
        s = s.set_index("site_id").reindex(ids)
        for c in ("network", "group", "lat", "lon"):
            if c in s.columns:
                info[c] = s[c].where(s[c].notna(), info[c])
    for c in ("lat", "lon"):
        info[c] = pd.to_numeric(info[c], errors="coerce")
        if info[c].isna().any():
            raise TableError(f"in-situ site(s) without {c}: {_few(info.index[info[c].isna()])}")
    info["network"] = info["network"].fillna("").astype(str)
    info["group"] = info["group"].where(info["group"].notna(), info["network"]).astype(str)
    return info.reset_index()


def _site_pixels(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if grid.crs == "EPSG:4326":
        return grid.xy_to_rowcol(lon, lat)
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon, lat)
    return grid.xy_to_rowcol(x, y)


def _bounds_deg(grid: Grid) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of a window of the target grid."""
    if grid.crs == "EPSG:4326":
        return grid.bounds
    from pyproj import Transformer

    t = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    return tuple(t.transform_bounds(*grid.bounds, densify_pts=21))  # type: ignore[return-value]


def _prov_key(prov: Provenance) -> tuple[Any, ...]:
    """What identifies the pixels a source serves (not the staleness of the request)."""
    return (prov.files, prov.composite_start)


class _GroupReader:
    """Natives of one group of sites, re-read only when the serving file(s) change."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        bounds: tuple[float, float, float, float],
        static_layers: tuple[str, ...] = STATIC_LAYERS,
    ):
        self.static_layers = static_layers
        self.sources = sources
        self.bounds = bounds
        self.cache: dict[str, tuple[tuple[Any, ...], NativeRaster | None]] = {}
        self.unavailable: dict[str, int] = {}
        self.static_problem: dict[str, str] = {}

    def get(self, name: str, date: dt.date) -> tuple[NativeRaster | None, Provenance | None]:
        src = self.sources.get(name)
        if src is None:
            if name in self.static_layers:
                self.static_problem[name] = "no source configured"
            return None, None
        prov = src.available(date)
        if prov is None:
            self.unavailable[name] = self.unavailable.get(name, 0) + 1
            if name in self.static_layers:
                self.static_problem.setdefault(name, "no file serves this layer")
            return None, None
        key = _prov_key(prov)
        hit = self.cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1], prov
        try:
            native: NativeRaster | None = src.native(date, self.bounds)
        except MissingInputError as exc:
            native = None
            self.unavailable[name] = self.unavailable.get(name, 0) + 1
            if name in self.static_layers:
                self.static_problem.setdefault(name, str(exc))
            log.debug("%s on %s over %s: %s", name, date, self.bounds, exc)
        self.cache[name] = (key, native)
        return native, prov


def _date(value: Any) -> dt.date:
    return pd.Timestamp(value).date()


def build_table(
    insitu_daily: pd.DataFrame,
    insitu_sites: pd.DataFrame | None,
    catalog: Catalog | Mapping[str, Source],
    target_grid: Grid,
    cfg: TableConfig,
    *,
    mode: Mode = "training",
    progress: Callable[[str], None] | None = None,
    feature_set: FeatureSet = DEFAULT_FEATURE_SET,
) -> TableResult:
    """The training table of ``insitu_daily`` on ``target_grid`` (docs/table-schema.md).

    ``feature_set``: whose inputs the table holds (``extended`` adds its columns; a row
    needs every input of the set).

    ``insitu_daily`` has at least site_id, date, sm (m3 m-3) and lat/lon (or
    ``insitu_sites`` gives them); ``catalog`` is a ``Catalog`` (its
    ``sources(mode)`` are used) or a mapping of input name to ``Source``.
    ``progress`` receives one line per step count as it is known.
    """
    say = progress or (lambda line: log.info("%s", line))
    names = feature_names(feature_set)
    all_inputs, static_layers = inputs_of(feature_set)
    daily = insitu_daily[["site_id", "date", "sm"]].copy()
    daily["site_id"] = daily["site_id"].astype(str)
    daily["date"] = pd.to_datetime(daily["date"]).dt.normalize().astype("datetime64[ns]")
    daily = daily.dropna(subset=["sm"]).drop_duplicates(["site_id", "date"])
    site_info = _site_frame(insitu_daily, insitu_sites)
    steps: list[Step] = []

    def step(name: str, frame: pd.DataFrame) -> None:
        s = Step(name, len(frame), int(frame["site_id"].nunique()))
        steps.append(s)
        say(f"{s.rows:>10,d} rows {s.sites:>6,d} sites  {s.name}")

    step(S_READ, daily)

    # Each site's pixel on the target grid.
    rows, cols = _site_pixels(
        target_grid, site_info["lon"].to_numpy(np.float64), site_info["lat"].to_numpy(np.float64)
    )
    site_info["row"], site_info["col"] = rows, cols
    inside = target_grid.contains_rowcol(rows, cols)
    outside = tuple(sorted(site_info.loc[~inside, "site_id"]))
    site_info = site_info.loc[inside].reset_index(drop=True)
    daily = daily[daily["site_id"].isin(set(site_info["site_id"]))]
    step(S_GRID, daily)

    sources = _sources_of(catalog, mode)
    if "smap" not in sources:
        raise TableError("no SMAP source configured")
    missing_static: dict[str, str] = {}
    for name in static_layers:  # known before any pixel is read
        src = sources.get(name)
        if src is None:
            missing_static[name] = "no source configured"
        elif src.available(None) is None:
            missing_static[name] = "no file serves this layer"
    dates = sorted({_date(d) for d in daily["date"].unique()})
    no_smap = tuple(d for d in dates if sources["smap"].available(d) is None)
    if no_smap:
        daily = daily[~daily["date"].isin(pd.to_datetime(list(no_smap)))]
    step(S_SMAP, daily)

    # Groups of sites: blocks of group_pixels target pixels.
    g = cfg.group_pixels
    site_info["grp"] = list(zip(site_info["row"] // g, site_info["col"] // g, strict=True))
    pix = site_info.set_index("site_id")[["row", "col", "grp"]]
    daily = daily.join(pix, on="site_id")
    n = len(daily)
    x = np.full((n, len(names)), np.nan, dtype=np.float32)
    cats = np.full((n, len(CATEGORICALS)), -1, dtype=np.int16)
    prov_cols: dict[str, list[Any]] = {
        "lst_composite": [None] * n,
        "lst_days_stale": [-1] * n,
        "et_composite": [None] * n,
        "et_days_stale": [-1] * n,
        "ndvi_composite": [None] * n,
        "smap_file": [""] * n,
    }
    static_ok = np.ones(n, dtype=bool)
    unavailable: dict[str, int] = {}
    served: dict[str, str] = {}
    lc_years: dict[int, int] = {}
    positions = np.arange(n)
    row_of = daily["row"].to_numpy(np.int64)
    col_of = daily["col"].to_numpy(np.int64)
    groups = daily.groupby("grp", sort=True).indices
    for gi, (grp, idx) in enumerate(groups.items()):
        members = site_info[site_info["grp"] == grp]
        r0, r1 = int(members["row"].min()), int(members["row"].max()) + 1
        c0, c1 = int(members["col"].min()), int(members["col"].max()) + 1
        reader = _GroupReader(
            sources, _bounds_deg(target_grid.window(r0, r1, c0, c1)), static_layers
        )
        sub = daily.iloc[idx]
        log.debug(
            "group %d/%d %s: %d sites, %d rows", gi + 1, len(groups), grp, len(members), len(sub)
        )
        for day, day_idx in sub.groupby("date", sort=True).indices.items():
            date = _date(day)
            inputs: dict[str, NativeRaster | None] = {}
            provs: dict[str, Provenance | None] = {}
            for name in all_inputs:
                inputs[name], provs[name] = reader.get(name, date)
            absent_static = [s for s in static_layers if inputs.get(s) is None]
            for j in positions[idx][day_idx]:
                r, c = int(row_of[j]), int(col_of[j])
                window = target_grid.window(r, r + 1, c, c + 1)
                block_inputs: dict[str, NativeRaster | np.ndarray] = {
                    name: (v if v is not None else np.full((1, 1), np.nan, np.float32))
                    for name, v in inputs.items()
                }
                block = build_feature_block(block_inputs, window, names)
                x[j] = block.x[:, 0, 0]
                cats[j] = block.cats[:, 0, 0]
                if absent_static:
                    static_ok[j] = False
            _record_provenance(prov_cols, positions[idx][day_idx], provs)
            for name, prov in provs.items():
                if prov is not None:
                    served.setdefault(name, prov.product)
            lc = provs.get("landcover")
            if lc is not None and lc.composite_start is not None:
                y = lc.composite_start.year
                lc_years[y] = lc_years.get(y, 0) + len(day_idx)
        for name, problem in reader.static_problem.items():
            missing_static.setdefault(name, problem)
        for name, k in reader.unavailable.items():
            unavailable[name] = unavailable.get(name, 0) + k
        if progress is None and len(groups) > 1:
            log.info("group %d/%d done (%d rows)", gi + 1, len(groups), len(sub))

    table = daily.drop(columns=["grp"]).reset_index(drop=True)
    for i, name in enumerate(names):
        table[name] = x[:, i]
    for i, name in enumerate(CATEGORICALS):
        table[name] = cats[:, i]
    for col, values in prov_cols.items():
        table[col] = values

    # Coverage: sites for which an input never has a value (before any row is dropped).
    no_cover: dict[str, tuple[str, ...]] = {}
    for name in all_inputs:
        ok = table[name].notna() if name in names else table[name] >= 0
        covered = ok.groupby(table["site_id"]).any()
        bad = tuple(sorted(covered.index[~covered.to_numpy()]))
        if bad and name not in missing_static:
            no_cover[name] = bad
    missing_rows = {
        name: int((table[name].isna() if name in names else table[name] < 0).sum())
        for name in all_inputs
    }

    table = table[static_ok]
    step(S_STATIC, table)
    table = table[table[list(names)].notna().all(axis=1)]
    step(S_INPUTS, table)
    table = table[(table[list(CATEGORICALS)] >= 0).all(axis=1)]
    step(S_REFS, table)

    table = _finish(table.reset_index(drop=True), site_info, cfg, names)
    report = TableReport(
        steps=tuple(steps),
        sites_outside_grid=outside,
        dates_without_smap=no_smap,
        missing_static=missing_static,
        sites_without_coverage=no_cover,
        missing_rows_by_input=missing_rows,
        unavailable_reads=unavailable,
        n_groups=len(groups),
        target_grid_key=target_grid.key(),
        mode=mode,
        family=getattr(catalog, "family", None),
        products=catalog.products(mode) if isinstance(catalog, Catalog) else served,
        landcover_years=lc_years,
    )
    return TableResult(table, report)


def _record_provenance(
    cols: dict[str, list[Any]], rows: np.ndarray, provs: Mapping[str, Provenance | None]
) -> None:
    smap, lst, et, ndvi = (provs.get(k) for k in ("smap", "lst", "et", "ndvi"))
    for j in rows:
        if smap is not None and smap.files:
            cols["smap_file"][j] = Path(smap.files[0]).name
        if lst is not None:
            cols["lst_composite"][j] = lst.composite_start
            cols["lst_days_stale"][j] = lst.days_stale
        if et is not None:
            cols["et_composite"][j] = et.composite_start
            cols["et_days_stale"][j] = et.days_stale
        if ndvi is not None:
            cols["ndvi_composite"][j] = ndvi.composite_start


def _finish(
    table: pd.DataFrame,
    site_info: pd.DataFrame,
    cfg: TableConfig,
    names: tuple[str, ...] = FEATURE_NAMES,
) -> pd.DataFrame:
    """Names, site columns, splits, weights, schema order and dtypes."""
    for name in CATEGORICALS:
        codes = CATEGORY_TABLES[name]
        table[f"{name}_name"] = table[name].map(lambda c, t=codes: t.get(int(c), f"code {c}"))
    info = site_info.set_index("site_id")[["network", "group", "lat", "lon"]]
    table = table.join(info, on="site_id")
    for col in ("lst_composite", "et_composite", "ndvi_composite"):
        table[col] = pd.to_datetime(pd.Series(table[col], dtype=object)).astype("datetime64[ns]")
    if len(table):
        # A site has one pixel, so one texture class (first row's, to be safe).
        site_tex = table.groupby("site_id", sort=True)["texture"].first()
        splits = assign_splits(
            site_tex.reset_index(),
            seed=cfg.split_seed,
            validation_fraction=cfg.validation_fraction,
            n_folds=cfg.n_folds,
        ).set_index("site_id")[["split", "fold", "cv_holdout"]]
        table = table.join(splits, on="site_id")
    else:
        table["split"], table["fold"], table["cv_holdout"] = "", 0, False
    table = pd.concat([table, weight_columns(table, cfg)], axis=1)
    table = table.sort_values(["site_id", "date"], kind="stable")
    missing = [c for c in (*COLUMNS, *names) if c not in table.columns]
    if missing:  # pragma: no cover - a programming error, not bad input
        raise TableError(f"internal: table lacks {missing}")
    return conform(table)


def load_insitu_tables(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The daily in-situ table at ``path`` and its ``<stem>_sites.parquet`` when present."""
    from pipeline.insitu import load_insitu, output_paths

    _, sites_path, _ = output_paths(path)
    if sites_path.exists():
        res = load_insitu(path)
        return res.daily, res.sites
    p = Path(path)
    if not p.exists():
        raise TableError(f"{p}: in-situ table not found (run 'smdown insitu')")
    return pd.read_parquet(p), None


def insitu_path_for(cfg: TableConfig) -> Path:
    """Where the daily in-situ table is: ``[table] insitu_path`` or insitu.parquet beside
    ``[table] path``."""
    if cfg.insitu_path:
        return Path(cfg.insitu_path)
    return Path(cfg.path).with_name("insitu.parquet")


def build_from_settings(
    settings: Any,
    *,
    insitu: str | Path | None = None,
    mode: Mode = "training",
    progress: Callable[[str], None] | None = None,
) -> TableResult:
    """``build_table`` with everything from the configuration (what ``smdown table`` runs)."""
    daily, sites = load_insitu_tables(
        insitu if insitu is not None else insitu_path_for(settings.table)
    )
    if settings.start is not None:
        daily = daily[pd.to_datetime(daily["date"]) >= pd.Timestamp(settings.start)]
    if settings.end is not None:
        daily = daily[pd.to_datetime(daily["date"]) <= pd.Timestamp(settings.end)]
    catalog = Catalog.from_settings(settings.sources)
    grid = target_grid_for(settings.grid.name, settings.grid.region)
    return build_table(
        daily,
        sites,
        catalog,
        grid,
        settings.table,
        mode=mode,
        progress=progress,
        feature_set=settings.models.feature_set,
    )


def table_metadata_for(result: TableResult, cfg: TableConfig) -> dict[str, Any]:
    """The ``smdown`` Parquet metadata of a built table."""
    return {
        "build": result.report.to_dict(),
        "clay_bins": cfg.clay_bins,
        "sand_bins": cfg.sand_bins,
        "ph_bins": cfg.ph_bins,
        "split_seed": cfg.split_seed,
        "validation_fraction": cfg.validation_fraction,
        "n_folds": cfg.n_folds,
        "validation_weights": cfg.validation_weights,
        # What the models trained on this table must be fed (models/manifest.py records it).
        "family": result.report.family,
        "products": dict(result.report.products),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
