"""The synthetic world's fields: deterministic, position-defined (tiles agree), realistic mixes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from grids import Grid
from pipeline.synth import SynthError, WorldSpec, daily_tile, noise, static_tile
from pipeline.synth.spec import PIXEL_DEG
from pipeline.synth.world import DailyModel, usda_texture

SPEC = WorldSpec(
    region=(-97.9, 35.1, -97.6, 35.4),
    start=dt.date(2020, 4, 1),
    end=dt.date(2020, 4, 5),
    seed=3,
    spinup_days=20,
)


def _window(west: float, north: float, rows: int, cols: int) -> Grid:
    return Grid("EPSG:4326", (PIXEL_DEG, 0.0, west, 0.0, -PIXEL_DEG, north), (rows, cols))


def test_hash_is_deterministic_and_uniform() -> None:
    i = np.arange(200)[:, None]
    j = np.arange(300)[None, :]
    a = noise.hash_uniform(12345, i, j)
    b = noise.hash_uniform(12345, i, j)
    assert np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.std() - 12**-0.5) < 0.01
    assert not np.array_equal(a, noise.hash_uniform(12346, i, j))


def test_fbm_has_unit_std_and_windows_agree() -> None:
    whole = noise.fbm(7, 1000, 2000, (400, 500), (64, 16, 4))
    assert 0.8 < whole.std() < 1.2
    part = noise.fbm(7, 1100, 2250, (150, 120), (64, 16, 4))
    assert np.array_equal(part, whole[100:250, 250:370])


def test_linear_upsampling_matches_gather_form() -> None:
    rng = np.random.default_rng(0)
    nodes = rng.normal(size=(12, 14))
    a = noise.upsample_linear(nodes, 3, 5, 3 * 60 - 30, 5 * 60 - 30, (500, 600), 60)
    b = noise.interp_nodes(nodes, 3, 5, 3 * 60 - 30, 5 * 60 - 30, (500, 600), 60, smooth=False)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_static_tiles_agree_across_a_seam() -> None:
    west, north = -97.9, 35.4
    whole = static_tile(SPEC, _window(west, north, 240, 300))
    left = static_tile(SPEC, _window(west, north, 240, 150))
    right = static_tile(SPEC, _window(west + 150 * PIXEL_DEG, north, 240, 150))
    for name, v in whole.items():
        np.testing.assert_array_equal(left[name], v[:, :150], err_msg=name)
        np.testing.assert_array_equal(right[name], v[:, 150:], err_msg=name)


def test_seeds_give_different_worlds_and_the_same_seed_the_same() -> None:
    w = _window(-97.9, 35.4, 120, 120)
    a = static_tile(SPEC, w)
    b = static_tile(SPEC, w)
    c = static_tile(WorldSpec(region=SPEC.region, seed=4), w)
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert not np.array_equal(a["sand"], c["sand"])
    assert not np.array_equal(a["elevation"], c["elevation"])


def test_static_layers_have_realistic_ranges_and_imbalance() -> None:
    # Sixteen 150 x 150 windows spread over the default demo region keep this test fast.
    parts = [
        static_tile(WorldSpec(), _window(-98.5 + 0.5 * i, 36.5 - 0.5 * j, 150, 150))
        for i in range(4)
        for j in range(4)
    ]
    st = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    assert 150 < st["elevation"].min() and st["elevation"].max() < 700  # m, Great Plains
    assert 0 < st["sand"].min() and st["sand"].max() < 100
    assert 0 < st["clay"].min() and st["clay"].max() < 70
    assert np.all(st["sand"] + st["clay"] <= 100.0)
    assert 4.5 <= st["ph"].min() and st["ph"].max() <= 8.5
    tex, n = np.unique(st["texture"], return_counts=True)
    frac = dict(zip(tex.tolist(), (n / n.sum()).tolist(), strict=True))
    assert len(frac) >= 6  # several USDA classes ...
    assert max(frac.values()) < 0.6  # ... none takes all ...
    assert min(frac.values()) < 0.02  # ... and some are rare: weighting matters
    lc, n = np.unique(st["landcover"], return_counts=True)
    lcf = dict(zip(lc.tolist(), (n / n.sum()).tolist(), strict=True))
    for code in (4, 10, 12, 13, 11, 17):  # forest, grass, crop, urban, wetland, water
        assert code in lcf, code
    assert lcf[12] > 0.2 and lcf[10] > 0.2 and lcf[11] < 0.02 and lcf[17] < 0.02
    kg = set(np.unique(st["koppen"]).tolist())
    assert kg == {7, 14, 25}  # BSk, Cfa, Dfa


def test_usda_texture_corners() -> None:
    sand = np.array([92.0, 80.0, 65.0, 40.0, 20.0, 5.0, 30.0, 10.0, 60.0, 25.0, 50.0, 8.0])
    clay = np.array([3.0, 8.0, 10.0, 20.0, 15.0, 5.0, 60.0, 45.0, 38.0, 32.0, 25.0, 32.0])
    # sand, loamy sand, sandy loam, loam, silt loam, silt, clay, silty clay, sandy clay,
    # clay loam, sandy clay loam, silty clay loam (models/features.py codes)
    expect = [12, 11, 9, 7, 8, 10, 1, 2, 3, 4, 6, 5]
    assert usda_texture(sand, clay).tolist() == expect


def test_window_must_be_on_the_lattice() -> None:
    off = Grid(
        "EPSG:4326", (PIXEL_DEG, 0.0, -97.9 + PIXEL_DEG / 3, 0.0, -PIXEL_DEG, 35.4), (10, 10)
    )
    with pytest.raises(SynthError, match="1/1200"):
        static_tile(SPEC, off)
    coarse = Grid("EPSG:4326", (0.01, 0.0, -97.9, 0.0, -0.01, 35.4), (10, 10))
    with pytest.raises(SynthError, match="resolution"):
        static_tile(SPEC, coarse)


def test_spec_validation_names_the_field() -> None:
    with pytest.raises(SynthError, match="region"):
        WorldSpec(region=(-97.0, 35.0, -98.0, 36.0))
    with pytest.raises(SynthError, match="end"):
        WorldSpec(start=dt.date(2020, 5, 1), end=dt.date(2020, 4, 1))


def test_daily_tile_is_deterministic_and_tiles_agree() -> None:
    date = dt.date(2020, 4, 4)
    whole = daily_tile(SPEC, date, _window(-97.9, 35.4, 120, 160))
    again = daily_tile(SPEC, date, _window(-97.9, 35.4, 120, 160))
    right = daily_tile(SPEC, date, _window(-97.9 + 80 * PIXEL_DEG, 35.4, 120, 80))
    for name in ("soil_moisture", "precip", "lst", "ndvi", "et"):
        np.testing.assert_array_equal(whole[name], again[name], err_msg=name)
        # the weather is upsampled by matrix products: equal to float32 rounding
        np.testing.assert_allclose(right[name], whole[name][:, 80:], atol=2e-5, err_msg=name)
    sm = whole["soil_moisture"]
    assert np.nanmin(sm) >= 0.02 and np.nanmax(sm) <= 0.6


def test_truth_responds_to_rain_and_dries_down() -> None:
    # Step one window 40 days; wet days raise the mean, dry spells lower it (drydown).
    w = _window(-97.9, 35.4, 60, 60)
    spec = WorldSpec(region=SPEC.region, seed=3)
    m = DailyModel(spec, w)
    m.reset(dt.date(2020, 4, 1))
    means, rains = [], []
    for _ in range(40):
        f = m.step()
        means.append(float(np.nanmean(f.soil_moisture)))
        rains.append(float(f.precip.mean()))
    d = np.diff(means)
    r = np.array(rains[1:])
    assert d[r > 5.0].mean() > 0.01  # rain days wet the soil (m3 m-3 per day)
    assert d[r == 0.0].mean() < 0.0  # rain-free days dry it
    assert np.mean(rains) > 1.0  # mm/day: a spring climate, not a desert


def test_lst_is_anticorrelated_with_moisture() -> None:
    f = daily_tile(SPEC, dt.date(2020, 4, 5), _window(-97.9, 35.4, 300, 300))
    sm, lst = f["soil_moisture"].ravel(), f["lst"].ravel()
    ok = np.isfinite(sm)
    assert np.corrcoef(sm[ok], lst[ok])[0, 1] < -0.3
