"""The daily catalogue: which file serves each variable on a date, under one root.

The root is laid out as the providers name their files (docs/data-layout.md);
``[sources]`` entries override single products. The tree is scanned once per
``Catalog`` (lazily, on first use); ``check`` and ``availability`` then work
from that inventory without touching the disk again, so a year of
availability is one directory walk.

The products of the optical inputs come from the configured *family*
(``[sources] family``, ``models.variables.FAMILIES``). For ``modis-terra``, mode
``"training"`` uses MOD11A2 8-day LST and MOD13A1 500 m NDVI and ``"maps"`` MOD21A1D
daily LST and MOD13Q1 250 m NDVI; for ``viirs-snpp`` VNP21A2 / VNP21A1D LST and
VNP13A1 NDVI; ET MOD16A2 / VNP16A2. Every family uses CHIRPS, SPL3SMP_E, SoilGrids,
MERIT, MCD12Q1 land cover (the latest year on or before the day) and Koeppen.
MODIS tiles live under ``MODIS/``, VIIRS HDF-EOS5 tiles under ``VIIRS/``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from models.variables import (
    DEFAULT_FAMILY,
    MODES,
    Mode,
    Variable,
    check_family,
    products,
    variables,
)
from pipeline.errors import SourceError
from pipeline.sources import chirps, modis, smap, viirs
from pipeline.sources.base import (
    DEFAULT_MARGIN_PIXELS,
    DEFAULT_RANGE_TOLERANCE,
    Provenance,
    Source,
)
from pipeline.sources.chirps import ChirpsSource
from pipeline.sources.koppen import KoppenSource
from pipeline.sources.merit import MeritSource
from pipeline.sources.modis import ModisIndex, ModisSource
from pipeline.sources.smap import SmapSource
from pipeline.sources.soilgrids import SoilGridsSource
from pipeline.sources.texture import TextureSource
from pipeline.sources.viirs import ViirsSource

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config import SourcesConfig

Status = Literal["ok", "padded", "missing"]

# Folder of each product under the root (docs/data-layout.md).
TOP: dict[str, str] = {
    "smap": "SMAP",
    "modis": "MODIS",
    "viirs": "VIIRS",
    "chirps": "CHIRPS",
    "soilgrids": "SoilGrids",
    "merit": "MERIT_DEM",
    "koppen": "Koeppen",
    "landcover": "MODIS",
}

# Product serving each variable, per mode (the variable registry's, default family).
PRODUCTS: dict[Mode, dict[str, str]] = {mode: products(mode) for mode in MODES}


@dataclass(frozen=True)
class ProductPaths:
    """Where each product lives (a directory laid out as the provider's, or one file)."""

    smap: Path
    modis: Path
    viirs: Path
    chirps: Path
    soilgrids: Path
    merit: Path
    koppen: Path
    landcover: Path

    @classmethod
    def under(cls, root: str | os.PathLike[str], **overrides: str | None) -> ProductPaths:
        """Paths of every product under ``root``; a non-None override replaces ``root/<TOP>``."""
        r = Path(root)
        vals: dict[str, Path] = {}
        for k in TOP:
            v = overrides.get(k)
            vals[k] = Path(v) if v else r / TOP[k]
        return cls(**vals)


@dataclass(frozen=True)
class CheckRow:
    """One line of ``smdown sources check``: what serves ``variable`` on the date.

    ``age_days`` is the date minus the first day of the serving composite
    (0 for daily files, None for static layers and missing inputs).
    """

    variable: str
    files: tuple[str, ...]
    product: str
    age_days: int | None
    days_stale: int | None
    status: Status
    note: str = ""


@dataclass(frozen=True)
class _Inventory:
    smap: dict[dt.date, list[smap.SmapGranule]]
    modis: modis.ModisIndex
    chirps: chirps.ChirpsIndex
    viirs: ModisIndex


class Catalog:
    """Every covariate source under one configured root, scanned once."""

    def __init__(
        self,
        paths: ProductPaths,
        *,
        smap_quality: Literal["recommended", "any"] = "recommended",
        modis_qc: modis.QC = "usable",
        lst_padding_days: int = 7,
        et_padding_days: int = 7,
        ndvi_padding_days: int = 0,
        margin: int = DEFAULT_MARGIN_PIXELS,
        range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
        family: str = DEFAULT_FAMILY,
    ) -> None:
        self.paths = paths
        self.smap_quality: Literal["recommended", "any"] = smap_quality
        self.modis_qc: modis.QC = modis_qc
        self.lst_padding_days = lst_padding_days
        self.et_padding_days = et_padding_days
        self.ndvi_padding_days = ndvi_padding_days
        self.margin = margin
        self.range_tolerance = range_tolerance
        self.family = check_family(family)
        self._sources: dict[Mode, dict[str, Source]] = {}

    @classmethod
    def from_root(cls, root: str | os.PathLike[str], **kwargs: object) -> Catalog:
        """A catalogue of ``root`` with defaults (keyword arguments as in ``__init__``)."""
        return cls(ProductPaths.under(root), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_settings(
        cls, cfg: SourcesConfig, root: str | os.PathLike[str] | None = None
    ) -> Catalog:
        """The catalogue ``[sources]`` describes (``root`` replaces ``cfg.root`` when given)."""
        paths = ProductPaths.under(
            root if root is not None else cfg.root,
            smap=cfg.smap,
            modis=cfg.modis,
            viirs=cfg.viirs,
            chirps=cfg.chirps,
            soilgrids=cfg.soilgrids,
            merit=cfg.merit,
            koppen=cfg.koppen,
            landcover=cfg.landcover,
        )
        return cls(
            paths,
            smap_quality=cfg.smap_quality,
            modis_qc=cfg.modis_qc,
            lst_padding_days=cfg.lst_padding_days,
            et_padding_days=cfg.et_padding_days,
            ndvi_padding_days=cfg.ndvi_padding_days,
            margin=cfg.margin_pixels,
            range_tolerance=cfg.range_tolerance,
            family=cfg.family,
        )

    def products(self, mode: Mode) -> dict[str, str]:
        """{variable: product} this catalogue serves in ``mode`` (its family's)."""
        return products(mode, self.family)

    # -- inventory ----------------------------------------------------------------------
    @cached_property
    def inventory(self) -> _Inventory:
        """The file index of the temporal products (one walk of each product folder)."""
        p = self.paths
        smap_idx = smap.index_granules([p.smap]) if p.smap.is_file() else smap.scan(p.smap)
        modis_idx = modis.scan(p.modis) if p.modis.is_dir() else {}
        if p.landcover != p.modis:
            lc = modis.scan(p.landcover) if p.landcover.is_dir() else {}
            modis_idx = {**modis_idx, "MCD12Q1": lc.get("MCD12Q1", {})}
        chirps_idx = chirps.index_files([p.chirps]) if p.chirps.is_file() else chirps.scan(p.chirps)
        viirs_idx = viirs.scan(p.viirs) if p.viirs.is_dir() else {}
        return _Inventory(smap_idx, modis_idx, chirps_idx, viirs_idx)

    def sources(self, mode: Mode = "training") -> dict[str, Source]:
        """Every source of ``mode`` keyed by feature name plus texture, landcover, koppen."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode in self._sources:
            return self._sources[mode]
        built: dict[str, Source] = {}
        for var in variables():
            product = var.product(mode, self.family)
            builder = PRODUCT_BUILDERS.get(product)
            if builder is None:
                raise SourceError(
                    f"variable {var.name!r}", f"no reader registered for product {product!r}"
                )
            built[var.name] = builder(self, var, mode, built)
        out = built
        self._sources[mode] = out
        return out

    # -- reports ------------------------------------------------------------------------
    def check(self, date: dt.date, mode: Mode = "training") -> list[CheckRow]:
        """What serves each variable on ``date`` (no pixel read): file, age, status."""
        rows: list[CheckRow] = []
        for name, src in self.sources(mode).items():
            prov = src.available(date)
            rows.append(_row(name, prov, date, self.products(mode)[name]))
        return rows

    def availability(self, start: dt.date, end: dt.date, mode: Mode = "training") -> pd.DataFrame:
        """Status ("ok"/"padded"/"missing") of every variable for every day in [start, end].

        Rows are dates, columns variables; built from the one-time inventory.
        """
        import pandas as pd

        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        srcs = self.sources(mode)
        days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
        static = {n: _status(s.available(None)) for n, s in srcs.items() if _is_static(n)}
        data: dict[str, list[str]] = {}
        for name, src in srcs.items():
            if name in static:
                data[name] = [static[name]] * len(days)
            else:
                data[name] = [_status(src.available(d)) for d in days]
        frame = pd.DataFrame(data, index=pd.DatetimeIndex(days, name="date"))
        return frame


# -- product readers ----------------------------------------------------------------------
ProductBuilder = Callable[["Catalog", Variable, Mode, dict[str, Source]], Source]
"""Builds the source of one variable in a mode (``built``: the sources made so far, in
registry order)."""


def max_pad_days(cat: Catalog, var: Variable, period_days: int) -> int:
    """The variable's padding (``[sources]`` setting or fixed); a daily product is not padded."""
    if var.padding is None or period_days <= 1:
        return 0
    if var.padding.setting is None:
        return var.padding.days
    return int(getattr(cat, var.padding.setting))


def _viirs(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    short = var.product(mode, cat.family)
    return ViirsSource(
        short,
        cat.inventory.viirs,
        max_pad_days=max_pad_days(cat, var, viirs.PRODUCTS[short].period_days),
        qc=cat.modis_qc,
        where=str(cat.paths.viirs),
        margin=cat.margin,
        range_tolerance=cat.range_tolerance,
    )


def _modis(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    short = var.product(mode, cat.family)
    # A variable with its own ``[sources]`` folder (landcover) reads there, else the MODIS root.
    where = getattr(cat.paths, var.name, cat.paths.modis)
    return ModisSource(
        short,
        cat.inventory.modis,
        max_pad_days=max_pad_days(cat, var, modis.PRODUCTS[short].period_days),
        qc=cat.modis_qc,
        where=str(where),
        margin=cat.margin,
        range_tolerance=cat.range_tolerance,
    )


def _smap(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    p = cat.paths.smap
    return SmapSource(
        cat.inventory.smap,
        quality=cat.smap_quality,
        where=str(p),
        margin=cat.margin,
        range_tolerance=cat.range_tolerance,
    )


def _chirps(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    return ChirpsSource(
        cat.inventory.chirps,
        where=str(cat.paths.chirps),
        margin=cat.margin,
        range_tolerance=cat.range_tolerance,
    )


def _soilgrids(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    return SoilGridsSource(
        var.name,  # type: ignore[arg-type]
        cat.paths.soilgrids,
        margin=cat.margin,
        range_tolerance=cat.range_tolerance,
    )


def _merit(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    return MeritSource(cat.paths.merit, margin=cat.margin, range_tolerance=cat.range_tolerance)


def _texture(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    sand, clay = (built[n] for n in var.derived_from)
    return TextureSource(sand, clay)  # type: ignore[arg-type]


def _koppen(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    return KoppenSource(cat.paths.koppen, margin=cat.margin)


def _api(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    from pipeline.sources.derived import ApiSource

    return ApiSource(built[var.derived_from[0]])


def _smap_memory(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    from pipeline.sources.derived import SmapMemory, SmapMemorySource

    # smap_prev and smap_age share one computation (one read of the days before).
    shared = next(
        (s.memory for s in built.values() if isinstance(s, SmapMemorySource)),
        None,
    )
    memory = shared if shared is not None else SmapMemory(built[var.derived_from[0]])
    return SmapMemorySource(memory, var.name, "age" if var.name.endswith("_age") else "value")


def _smap_nbr(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    from pipeline.sources.derived import SmapNeighbourhoodSource

    return SmapNeighbourhoodSource(built[var.derived_from[0]], var.name)


def _terrain(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    from pipeline.sources.derived import TerrainSource

    return TerrainSource(built[var.derived_from[0]], var.name)


def _season(cat: Catalog, var: Variable, mode: Mode, built: dict[str, Source]) -> Source:
    from pipeline.sources.derived import SeasonSource

    return SeasonSource(var.name)


PRODUCT_BUILDERS: dict[str, ProductBuilder] = {
    "SPL3SMP_E": _smap,
    **dict.fromkeys(("MOD13A1", "MOD13Q1", "MOD11A2", "MOD21A1D", "MOD16A2", "MCD12Q1"), _modis),
    **dict.fromkeys(modis.AQUA.values(), _modis),
    **dict.fromkeys(viirs.PRODUCTS, _viirs),
    "CHIRPS-2.0": _chirps,
    "SoilGrids-2.0": _soilgrids,
    "MERIT-DEM": _merit,
    "SoilGrids-2.0 (USDA triangle)": _texture,
    "Beck-KG-V1": _koppen,
    # The extended feature set (pipeline.sources.derived).
    "derived: API of CHIRPS-2.0": _api,
    "derived: SPL3SMP_E persistence": _smap_memory,
    "derived: SPL3SMP_E persistence age": _smap_memory,
    "derived: SPL3SMP_E 3x3 mean": _smap_nbr,
    "derived: slope of MERIT-DEM": _terrain,
    "derived: TPI of MERIT-DEM": _terrain,
    "derived: day of year": _season,
}
"""The reader of each product the registry names (``models.variables``)."""


def register_product(product: str, builder: ProductBuilder) -> None:
    """Register the reader of a new product (one product module per provider product)."""
    if product in PRODUCT_BUILDERS:
        raise ValueError(f"a reader for product {product!r} is already registered")
    PRODUCT_BUILDERS[product] = builder


STATIC = frozenset(v.name for v in variables() if v.kind != "daily" and v.padding is None)
# (pipeline.table.build.STATIC_LAYERS is the same rule, in registry order.)
"""Variables with one layer for every day (no date, no padding)."""


def _is_static(name: str) -> bool:
    return name in STATIC


def _status(prov: Provenance | None) -> Status:
    if prov is None:
        return "missing"
    return "padded" if prov.days_stale > 0 else "ok"


def _row(name: str, prov: Provenance | None, date: dt.date, product: str) -> CheckRow:
    if prov is None:
        return CheckRow(name, (), product, None, None, "missing")
    if prov.composite_start is None:  # a static layer: no age
        return CheckRow(name, prov.files, prov.product, None, None, _status(prov), prov.note)
    age = (date - prov.composite_start).days
    return CheckRow(name, prov.files, prov.product, age, prov.days_stale, _status(prov), prov.note)
