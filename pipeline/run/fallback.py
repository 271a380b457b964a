"""Per-pixel fallback chains of the daily inputs: every land pixel gets each input if it can.

A daily input of a map pixel is served by the first level of its chain that holds
a valid value at that pixel; the level is recorded per pixel in the cube
(``smap_age_days``, and the bits of ``input_fallback``, ``pipeline.cube.encoding``):

- ``smap``: the day's own retrieval, else the newest valid retrieval of the
  ``[sources] smap_max_age_days`` days before (SMAP revisits a place every 2-3 days
  and its swaths leave gaps); the age in days is kept per pixel.
- ``lst`` (maps mode): the daily product (MOD21A1D, cloud gaps), else the composite
  the training table uses (MOD11A2 8-day) serving the day, else
  ``[sources] earlier_composites`` earlier composites (``lst_composite`` and
  ``lst_earlier`` bits). ``[sources] lst_composite_fallback = false`` stops at the
  daily product.
- ``ndvi``, ``et``: the composite serving the day (padded past its period for the
  products' latency by the one padding rule, ``pipeline.sources.padding``), else the
  earlier composites (``ndvi_earlier``/``et_earlier``).
- any other daily input (``precip``): its own file only.

``first_valid`` and ``newest_valid`` are the pure per-pixel kernels; ``serve_daily``
reads the levels of one tile (only as many as the tile's land pixels need) and
applies them. The per-variable ``<var>_padded`` quality bits are set per pixel where
the value came from a composite past its own period (padded or earlier).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grids import Grid
from pipeline.cube.encoding import FALLBACK_BITS, FILL_AGE

AGE_NONE = FILL_AGE
"""``smap_age_days`` of a pixel no SMAP retrieval within the allowed age serves."""
COMPOSITE_CHAINS: tuple[str, ...] = ("ndvi", "et")
"""Inputs served by composites whose earlier composites fill a pixel."""


# -- pure kernels ---------------------------------------------------------------------------
def first_valid(
    levels: Sequence[np.ndarray | None],
    shape: tuple[int, int],
    need: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the value of the first level that is finite there.

    ``levels`` are float32 (H, W) arrays (None: a level with nothing); ``need`` (bool
    (H, W)) limits the pixels filled (others stay NaN). Returns (values float32 with NaN
    where no level serves, level int8 with -1 there).
    """
    values = np.full(shape, np.nan, dtype=np.float32)
    level = np.full(shape, -1, dtype=np.int8)
    todo = np.ones(shape, dtype=bool) if need is None else np.asarray(need, dtype=bool).copy()
    for i, arr in enumerate(levels):
        if arr is None:
            continue
        a = np.asarray(arr)
        if a.shape != shape:
            raise ValueError(f"fallback level {i}: shape {a.shape} is not {shape}")
        take = todo & np.isfinite(a)
        values[take] = a[take]
        level[take] = i
        todo &= ~take
    return values, level


def newest_valid(
    by_age: Mapping[int, np.ndarray | None],
    shape: tuple[int, int],
    max_age: int,
    need: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the newest finite value among ``by_age`` {age in days: (H, W)} ages <= max_age.

    Returns (values float32, NaN where none; age uint8, ``AGE_NONE`` (255) where none).
    """
    ages = sorted(a for a in by_age if 0 <= a <= max_age)
    values, level = first_valid([by_age[a] for a in ages], shape, need)
    lut = np.array([*ages, AGE_NONE], dtype=np.uint8)  # level -1 -> last entry
    return values, lut[level.astype(np.intp)]


def level_bits(level: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    """uint8 bits per pixel: ``bits[k]`` where ``level == k`` (0 where -1)."""
    lut = np.array([*bits, 0], dtype=np.uint8)
    return lut[np.asarray(level).astype(np.intp)]


# -- chains and their reading --------------------------------------------------------------
@dataclass(frozen=True)
class FallbackRules:
    """How far each chain goes (``[sources]``)."""

    smap_max_age_days: int = 3
    lst_composite_fallback: bool = True
    earlier_composites: int = 1

    @classmethod
    def from_sources(cls, cfg: Any) -> FallbackRules:
        return cls(
            smap_max_age_days=int(getattr(cfg, "smap_max_age_days", cls.smap_max_age_days)),
            lst_composite_fallback=bool(
                getattr(cfg, "lst_composite_fallback", cls.lst_composite_fallback)
            ),
            earlier_composites=int(getattr(cfg, "earlier_composites", cls.earlier_composites)),
        )


@dataclass(frozen=True)
class LevelUse:
    """One level of a chain as used on a tile: what served it and how many land pixels."""

    label: str
    files: tuple[str, ...]
    days_stale: int
    n_pixels: int
    note: str = ""


@dataclass
class Served:
    """One daily input on a tile after its chain: values, per-pixel provenance, levels used."""

    values: np.ndarray
    fallback: np.ndarray  # uint8 FALLBACK_BITS
    padded: np.ndarray  # bool: from a composite past its own period
    levels: list[LevelUse] = field(default_factory=list)
    provenance: Any = None  # the first level's Provenance (or the one that served most)
    age: np.ndarray | None = None  # smap only: uint8 days, AGE_NONE where missing
    missing_file: bool = False  # the first level's file does not exist (nothing landed)


@dataclass(frozen=True)
class _Level:
    label: str
    values: np.ndarray | None
    prov: Any
    bit: int
    padded: bool


Reader = Callable[[Any, dt.date], tuple[np.ndarray, Any] | None]
"""(source, date) -> (values on the tile grid, Provenance), or None when nothing serves."""


def _read(src: Any, date: dt.date, bounds: Any, target: Grid) -> tuple[np.ndarray, Any] | None:
    """``src`` on ``date`` sampled to ``target``; None when no file serves, NaN when empty."""
    from pipeline.sources.base import MissingInputError
    from pipeline.sources.sample import sample

    try:
        native = src.native(date, bounds)
    except MissingInputError as exc:
        prov = src.available(date)
        if prov is None:
            return None
        # The file exists but holds no valid value over the tile (a swath gap).
        empty = np.full(target.shape, np.nan, dtype=np.float32)
        return empty, prov.with_note(f"no valid value over this tile: {exc.problem}")
    return sample(native, target), native.provenance


def _combine(levels: list[_Level], shape: tuple[int, int], need: np.ndarray) -> Served:
    """Apply the levels to every pixel; ``need`` (land) only counts the pixels per level."""
    values, level = first_valid([lv.values for lv in levels], shape)
    fallback = level_bits(level, [lv.bit for lv in levels])
    padded_lut = np.array([*(lv.padded for lv in levels), False], dtype=bool)
    padded = padded_lut[level.astype(np.intp)]
    uses = [
        LevelUse(
            lv.label,
            tuple(str(f) for f in (getattr(lv.prov, "files", ()) or ())),
            int(getattr(lv.prov, "days_stale", 0) or 0),
            int(((level == i) & need).sum()),
            str(getattr(lv.prov, "note", "") or ""),
        )
        for i, lv in enumerate(levels)
        if lv.prov is not None
    ]
    first = next((lv.prov for lv in levels if lv.prov is not None), None)
    return Served(values, fallback, padded, uses, first)


def _composite_levels(
    src: Any,
    date: dt.date,
    bounds: Any,
    target: Grid,
    n_earlier: int,
    first_bit: int,
    earlier_bit: int,
    label: str,
    need: np.ndarray,
) -> list[_Level]:
    """The composite serving ``date`` (padding rule), then up to ``n_earlier`` earlier ones.

    Earlier levels are read only while some needed pixel is still empty.
    """
    out: list[_Level] = []
    got = _read(src, date, bounds, target)
    if got is None:
        return out
    values, prov = got
    stale = int(getattr(prov, "days_stale", 0) or 0)
    out.append(_Level(label, values, prov, first_bit, stale > 0))
    todo = need & ~np.isfinite(values)
    start = getattr(prov, "composite_start", None)
    for _ in range(n_earlier):
        if not todo.any() or start is None:
            break
        got = _read(src, start - dt.timedelta(days=1), bounds, target)
        if got is None:
            break
        values, prov = got
        out.append(_Level(f"{label}-earlier", values, prov, earlier_bit, True))
        todo &= ~np.isfinite(values)
        start = getattr(prov, "composite_start", None)
    return out


def serve_smap(
    src: Any,
    date: dt.date,
    bounds: Any,
    target: Grid,
    max_age: int,
    need: np.ndarray,
) -> Served:
    """SMAP of ``date`` else the newest valid retrieval of up to ``max_age`` days before.

    Earlier days are read only while a pixel of ``need`` (the land) is still empty.
    """
    shape = target.shape
    by_age: dict[int, np.ndarray | None] = {}
    provs: dict[int, Any] = {}
    todo = need.copy()
    missing_file = False
    for age in range(max_age + 1):
        if age and not todo.any():
            break
        got = _read(src, date - dt.timedelta(days=age), bounds, target)
        if got is None:
            missing_file = missing_file or age == 0
            continue
        by_age[age], provs[age] = got
        todo &= ~np.isfinite(got[0])
    values, age_px = newest_valid(by_age, shape, max_age)
    bit = FALLBACK_BITS["smap_earlier"]
    fallback = np.where((age_px > 0) & (age_px != AGE_NONE), np.uint8(bit), np.uint8(0))
    uses = [
        LevelUse(
            f"age {a}",
            tuple(str(f) for f in (getattr(p, "files", ()) or ())),
            0,
            int(((age_px == a) & need).sum()),
            str(getattr(p, "note", "") or ""),
        )
        for a, p in sorted(provs.items())
    ]
    first = provs.get(0, next(iter(provs.values()), None))
    served = Served(values, fallback.astype(np.uint8), np.zeros(shape, bool), uses, first)
    served.age = age_px
    served.missing_file = missing_file
    return served


def serve_daily(
    var: str,
    srcs: Mapping[str, Any],
    composite_srcs: Mapping[str, Any],
    date: dt.date,
    bounds: Any,
    target: Grid,
    rules: FallbackRules,
    need: np.ndarray,
) -> Served:
    """The chain of one daily input on a tile (see the module docstring).

    ``srcs``: the run's sources (maps mode); ``composite_srcs``: the training-mode sources,
    whose LST is the composite the daily LST falls back to. ``need``: the land pixels (the
    levels fill every pixel; only ``need`` decides whether a further level is read).
    """
    src = srcs[var]
    if var == "smap":
        return serve_smap(src, date, bounds, target, rules.smap_max_age_days, need)
    shape = target.shape
    if var == "lst":
        levels: list[_Level] = []
        got = _read(src, date, bounds, target)
        daily_period = _period_days(src) <= 1
        if got is not None:
            stale = int(getattr(got[1], "days_stale", 0) or 0)
            levels.append(_Level("daily" if daily_period else "composite", *got, 0, stale > 0))
        comp = composite_srcs.get(var)
        todo = need if got is None else need & ~np.isfinite(got[0])
        if daily_period and rules.lst_composite_fallback and comp is not None and todo.any():
            levels += _composite_levels(
                comp,
                date,
                bounds,
                target,
                rules.earlier_composites,
                FALLBACK_BITS["lst_composite"],
                FALLBACK_BITS["lst_composite"] | FALLBACK_BITS["lst_earlier"],
                "composite",
                todo,
            )
        elif not daily_period and todo.any() and got is not None:
            # The run's LST is itself a composite (training mode): earlier ones fill it.
            levels = _composite_levels(
                src,
                date,
                bounds,
                target,
                rules.earlier_composites,
                0,
                FALLBACK_BITS["lst_earlier"],
                "composite",
                need,
            )
        served = _combine(levels, shape, need)
        served.missing_file = got is None
        return served
    if var in COMPOSITE_CHAINS:
        levels = _composite_levels(
            src,
            date,
            bounds,
            target,
            rules.earlier_composites,
            0,
            FALLBACK_BITS[f"{var}_earlier"],
            "composite",
            need,
        )
        served = _combine(levels, shape, need)
        served.missing_file = not levels
        return served
    got = _read(src, date, bounds, target)
    if got is None:
        served = _combine([], shape, need)
        served.missing_file = True
        return served
    stale = int(getattr(got[1], "days_stale", 0) or 0)
    return _combine([_Level("file", *got, 0, stale > 0)], shape, need)


def _period_days(src: Any) -> int:
    """The composite period of a source's product (1 for daily products and unknowns)."""
    product = getattr(src, "product", None)
    return int(getattr(product, "period_days", 1) or 1)
