"""Smoke runs of the quick benchmarks (figures exist and are positive) and the lazy sources.

The full benchmarks are never run in tests: speed belongs in ``smdown bench``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from grids.resample import nearest_index
from pipeline.sources.base import Source
from pipeline.sources.sample import sample

DAY = dt.date(2020, 6, 1)


def test_lazy_sources_follow_the_source_protocol_and_windows_agree() -> None:
    from pipeline.synth.lazy import lazy_catalog, lazy_root

    class Cfg:
        root = lazy_root(3)
        margin_pixels = 2

    srcs = lazy_catalog(Cfg()).sources("maps")
    assert {"smap", "ndvi", "lst", "precip", "et", "sand", "clay", "ph", "elevation"} <= set(srcs)
    a_bounds = (-97.0, 36.0, -96.5, 36.5)
    b_bounds = (-96.8, 36.2, -96.3, 36.7)  # overlaps a
    for name, src in srcs.items():
        assert isinstance(src, Source), name
        date = None if name in ("sand", "clay", "ph", "elevation", "koppen", "texture") else DAY
        a = src.native(date, a_bounds)
        b = src.native(date, b_bounds)
        assert a.lattice is not None and a.lattice == b.lattice, name
        # Shared lattice pixels hold identical values whichever window generated them.
        (ar, ac), (br, bc) = a.offset, b.offset
        r0, r1 = max(ar, br), min(ar + a.grid.height, br + b.grid.height)
        c0, c1 = max(ac, bc), min(ac + a.grid.width, bc + b.grid.width)
        assert r1 > r0 and c1 > c0, name
        np.testing.assert_array_equal(
            a.data[r0 - ar : r1 - ar, c0 - ac : c1 - ac],
            b.data[r0 - br : r1 - br, c0 - bc : c1 - bc],
            err_msg=name,
        )
        assert np.isfinite(a.data).any(), name
        assert a.provenance.variable == name
    # Same seed, same values; another seed, other values.
    other = lazy_catalog(type("C", (), {"root": lazy_root(4)})()).sources("maps")
    assert not np.array_equal(
        srcs["ndvi"].native(DAY, a_bounds).data, other["ndvi"].native(DAY, a_bounds).data
    )


def test_lazy_land_cover_is_water_off_the_conus_outline() -> None:
    from grids.named import named_grid
    from pipeline.synth.lazy import LC_WATER, lazy_catalog, on_land

    lc = lazy_catalog(object()).sources("maps")["landcover"]
    sea = lc.native(DAY, (-123.0, 30.0, -122.0, 31.0))  # Pacific, off California
    assert np.all(sea.data == LC_WATER)
    land = lc.native(DAY, (-100.0, 38.0, -99.0, 39.0))  # Kansas
    assert np.mean(land.data == LC_WATER) < 0.1
    # The outline covers roughly the land share of the conus-90m box (60 % by pixels).
    g = named_grid("conus-90m")
    lon = np.linspace(g.bounds[0], g.bounds[2], 400)
    lat = np.linspace(g.bounds[1], g.bounds[3], 200)
    frac = on_land(lon[None, :], lat[:, None]).mean()
    assert 0.5 < frac < 0.7


def test_lazy_window_samples_onto_a_tile_through_the_global_lattice() -> None:
    from grids.named import named_grid
    from pipeline.synth.lazy import lazy_catalog

    tile = named_grid("conus-90m").crop((-97.0, 36.0, -96.9, 36.1))
    src = lazy_catalog(object()).sources("maps")["et"]
    nat = src.native(DAY, tile.bounds)
    got = sample(nat, tile)
    assert got.shape == tile.shape and np.isfinite(got).all()
    assert nearest_index(nat.lattice, tile).coverage == 1.0


def _positive(figures: dict, keys: list[str]) -> None:
    for key in keys:
        value: object = figures
        for part in key.split("."):
            assert isinstance(value, dict) and part in value, f"missing figure {key}"
            value = value[part]
        assert isinstance(value, int | float) and value > 0, f"{key} = {value!r}"


@pytest.mark.timeout(600)
def test_quick_benchmarks_give_positive_figures() -> None:
    from benchmarks import bench_conus, bench_run

    run = bench_run.run(quick=True)
    _positive(run, ["tile.end_to_end_s", "inference.predict_s", "tile_over_inference"])
    conus = bench_conus.run(quick=True)
    _positive(
        conus,
        [
            "models.dense.mrows_per_s_per_core",
            "models.rf.mrows_per_s_per_core",
            "conus_day.day_s",
            "conus_day.static_stack_s",
            "conus_day.day_peak_rss_gb",
            "core_hours.dense.total_core_h",
            "core_hours.rf.total_core_h",
            "profile.cold_cpu_s",
            "profile.warm.end_to_end_over_inference_throughput",
            "scaling.speedup_2_over_1",
        ],
    )
    growth = conus["growth"]
    assert len(growth) == 2
    for g in growth.values():
        _positive(g, ["day_s", "static_s", "day_mpx_per_s", "day_peak_rss_gb", "predicted_px"])


def _full_transform_index(src: object, dst: object) -> tuple[np.ndarray, np.ndarray]:
    """The nearest index computed the plain way: every centre through PROJ (reference)."""
    from grids import resample as r

    x, y = dst.pixel_centres()  # type: ignore[attr-defined]
    xs, ys = r.transform_xy(x, y, dst.crs, src.crs)  # type: ignore[attr-defined]
    ia, ib, ic, id_, ie, if_ = r._inv_gt(src.transform)  # type: ignore[attr-defined]
    cols, vc = r._to_index(ic + xs * ia + ys * ib, src.width)  # type: ignore[attr-defined]
    rows, vr = r._to_index(if_ + xs * id_ + ys * ie, src.height)  # type: ignore[attr-defined]
    valid = vr & vc
    return np.where(valid, rows * src.shape[1] + cols, -1), valid  # type: ignore[attr-defined]


@pytest.mark.parametrize("lattice", ["ease2-m09", "soilgrids-250m", "MOD13Q1", "MOD21A1D"])
def test_speedups_of_the_nearest_index_keep_it_bit_identical(lattice: str) -> None:
    # The cylindrical (EASE2) separable path and the shared sinusoidal transform must give
    # the index the plain full PROJ transform gives, on tiles anywhere in CONUS.
    from grids.named import named_grid
    from grids.resample import clear_caches
    from pipeline.sources.modis import PRODUCTS

    src = PRODUCTS[lattice].global_grid() if lattice in PRODUCTS else named_grid(lattice)
    conus = named_grid("conus-90m")
    rng = np.random.default_rng(7)
    for size in (300, 41):
        r0 = int(rng.integers(0, conus.height - size))
        c0 = int(rng.integers(0, conus.width - size))
        dst = conus.window(r0, r0 + size, c0, c0 + size)
        clear_caches()
        got = nearest_index(src, dst)
        ref_flat, ref_valid = _full_transform_index(src, dst)
        np.testing.assert_array_equal(got.valid, ref_valid)
        flat = got.rows.astype(np.int64) * src.shape[1] + got.cols
        np.testing.assert_array_equal(np.where(got.valid, flat, -1), ref_flat)
