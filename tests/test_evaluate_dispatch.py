"""DisPATCh baseline: SEE from LST and NDVI, cell-conserving linear downscaling of SMAP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.evaluate import dispatch as dp
from pipeline.evaluate.zarrio import write_zarr_v2


def _scene(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    h, w = 40, 60
    ids = (np.arange(h)[:, None] // 10) * 100 + (np.arange(w)[None, :] // 10)
    cell_sm = rng.uniform(0.1, 0.35, ids.max() + 1)
    smap = cell_sm[ids]
    ndvi = rng.uniform(0.2, 0.7, (h, w))
    lst = 25 + 15 * rng.random((h, w)) - 8 * ndvi
    return smap, lst, ndvi, ids


def test_see_is_high_for_cool_soil_and_low_for_hot_soil() -> None:
    ndvi = np.full(200, 0.3)
    lst = np.linspace(20, 45, 200)
    see = dp.soil_evaporative_efficiency(lst, ndvi)
    assert np.all(np.diff(see) <= 0)  # hotter soil, drier: lower SEE
    assert see[0] == 1.0 and see[-1] == 0.0
    # Under dense vegetation T_s is undefined.
    assert np.isnan(dp.soil_evaporative_efficiency(np.array([30.0]), np.array([0.95]))).all()


def test_dispatch_conserves_the_cell_mean_and_follows_see() -> None:
    smap, lst, ndvi, ids = _scene()
    sm = dp.dispatch(smap, lst, ndvi, ids)
    see = dp.soil_evaporative_efficiency(lst, ndvi)
    conserved = 0
    for c in np.unique(ids):
        m = ids == c
        # Within the cell: SM_HR - SM_LR = SM_p * (SEE - <SEE>), SM_p = SM_LR / <SEE>.
        want = smap[m] + smap[m] / see[m].mean() * (see[m] - see[m].mean())
        np.testing.assert_allclose(sm[m], np.clip(want, *dp.SM_RANGE), atol=1e-12)
        if (want >= dp.SM_RANGE[0]).all() and (want <= dp.SM_RANGE[1]).all():
            assert sm[m].mean() == pytest.approx(smap[m][0], abs=1e-9)  # the cell mean is SMAP's
            conserved += 1
    assert conserved >= 3
    smap2 = smap.copy()
    smap2[:10, :10] = np.nan
    out = dp.dispatch(smap2, lst, ndvi, ids)
    assert np.isnan(out[:10, :10]).all() and np.isfinite(out[10:, 10:]).all()


def test_sample_stations_reads_the_pixel_of_each_row_and_day(tmp_path: Path) -> None:
    days = pd.date_range("2020-06-01", periods=2)
    v = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    ds = xr.Dataset(
        {"soil_moisture": (("time", "lat", "lon"), v)},
        coords={"time": days, "lat": [3.0, 2.0, 1.0], "lon": [0.0, 1.0, 2.0, 3.0]},
    )
    write_zarr_v2(ds, tmp_path / "d.zarr")
    rows = pd.DataFrame(
        {
            "date": [days[0], days[1], pd.Timestamp("2020-07-01"), days[1]],
            "row": [0, 2, 0, 5],
            "col": [1, 3, 0, 0],
        }
    )
    got = dp.sample_stations(tmp_path / "d.zarr", rows)
    np.testing.assert_array_equal(got[:2], [v[0, 0, 1], v[1, 2, 3]])
    assert np.isnan(got[2:]).all()
