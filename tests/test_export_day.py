"""Exports of one day: COG (GDAL reads CRS, transform, scale, values), NetCDF, quicklook PNG."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from grids import Grid
from pipeline.cli import main
from pipeline.cube import (
    DAY_FINAL,
    FALLBACK_BITS,
    FLAG_BITS,
    Cube,
    CubeLayout,
    ModelInfo,
    StoreSpec,
    encode_tile,
    open_cube,
    write_region,
)
from pipeline.export import GREYS, ExportError, export_day

# 600 x 700 pixels of 90 m (3 arc-seconds) from 36 N, 98 W: more than one 512-pixel block.
ARCSEC3 = 1.0 / 1200.0
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -98.0, 0.0, -ARCSEC3, 36.0), (600, 700))
DAY = dt.date(2021, 3, 14)
MODEL = ModelInfo("dense", "12" * 32, "0.1.0", "test")


@pytest.fixture(scope="module")
def cube(tmp_path_factory: pytest.TempPathFactory) -> Cube:
    root = tmp_path_factory.mktemp("cube")
    c = Cube(StoreSpec(str(root / "dense-121212121212.zarr")), CubeLayout(GRID, 100, 2021))
    c.create(MODEL, 2021)
    rng = np.random.default_rng(7)
    mean = rng.uniform(0.05, 0.45, GRID.shape).astype(np.float32)
    flags = np.zeros(GRID.shape, np.uint8)
    flags[100:200, 100:300] = FLAG_BITS["water"]
    flags[400:450, 500:600] = FLAG_BITS["urban"]
    flags[300:350, :] = FLAG_BITS["smap_missing"] | FLAG_BITS["input_missing"]
    mean[flags != 0] = np.nan
    arrays = encode_tile(mean, mean * 0.2, mean * 0.1, flags)
    # Two "tiles" of 300 rows; the bottom-right 100 x 100 chunk is never computed (fill).
    write_region(c.spec, c.layout, DAY, 0, 0, {k: v[:300] for k, v in arrays.items()})
    write_region(c.spec, c.layout, DAY, 300, 0, {k: v[300:, :600] for k, v in arrays.items()})
    c.write_provenance(DAY, {"inputs": {"smap": ["SMAP_L3_SM_P_E_20210314_R18290_001.h5"]}})
    c.set_day_status(DAY, DAY_FINAL)
    c.consolidate()
    (root / "latest.json").write_text(json.dumps({"store": "dense-121212121212.zarr"}))
    return c


def test_cog_is_read_by_gdal_with_georeferencing_and_values(cube: Cube, tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    path = export_day(cube.spec.url, DAY, "cog", tmp_path / "day.tif")
    day = open_cube(cube.spec.url).sel(time=str(DAY))
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.crs.to_epsg() == 4326
        assert tuple(src.transform)[:6] == pytest.approx(GRID.transform, abs=1e-12)
        assert src.count == 6 and src.nodata == 65535
        assert src.scales[:3] == pytest.approx((1e-4, 1e-4, 1e-4))
        assert src.descriptions[0] == "soil_moisture"
        assert src.tags()["model_manifest_hash"] == MODEL.manifest_hash
        assert src.tags(4)["flag_meanings"].split() == list(FLAG_BITS)
        sm = src.read(1)
        qf = src.read(4)
        assert src.descriptions[4:] == ("smap_age_days", "input_fallback")
        assert src.tags(6)["flag_meanings"].split() == list(FALLBACK_BITS)
        age = src.read(5)
    want = day.soil_moisture.values
    got = np.where(sm == 65535, np.nan, sm * 1e-4)
    np.testing.assert_allclose(got, want, atol=1e-9, equal_nan=True)
    assert qf[150, 150] == FLAG_BITS["water"]
    assert qf[550, 650] == 65535  # never computed: flag fill 255 -> nodata
    assert age[550, 650] == 65535


def test_netcdf_round_trips_the_day(cube: Cube, tmp_path: Path) -> None:
    import xarray as xr

    path = export_day(cube.spec.url, DAY, "netcdf", tmp_path / "day.nc")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.sizes == {"time": 1, "lat": 600, "lon": 700}
        assert str(ds.time.values[0])[:10] == DAY.isoformat()
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert json.loads(ds.attrs["provenance"])["inputs"]["smap"][0].startswith("SMAP_L3")
        assert ds.soil_moisture.encoding["dtype"] == np.dtype("uint16")
        assert ds.soil_moisture.attrs["units"] == "m3 m-3"
        assert "crs_wkt" in ds.spatial_ref.attrs
        want = open_cube(cube.spec.url).sel(time=str(DAY))
        np.testing.assert_allclose(
            ds.soil_moisture.values[0], want.soil_moisture.values, atol=1e-9, equal_nan=True
        )
        np.testing.assert_array_equal(ds.lat.values, GRID.y_coords())


def test_png_quicklook_shows_masked_areas_in_their_greys(cube: Cube, tmp_path: Path) -> None:
    import matplotlib.image as mpimg
    from matplotlib.colors import to_rgb

    path = export_day(cube.spec.url, DAY, "png", tmp_path / "day.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)[..., :3]
    for name in ("water", "urban", "missing"):
        rgb = np.array(to_rgb(GREYS[name]))
        hits = (np.abs(img - rgb) < 2 / 255).all(axis=-1).sum()
        assert hits > 100, name


def test_absent_day_and_unknown_format_are_refused(cube: Cube, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"2021-03-15 has not been published"):
        export_day(cube.spec.url, DAY + dt.timedelta(days=1), "cog", tmp_path / "x.tif")
    with pytest.raises(ExportError, match="outside the cube's time axis"):
        export_day(cube.spec.url, dt.date(2022, 1, 1), "cog", tmp_path / "x.tif")
    with pytest.raises(ExportError, match="format 'jpeg'"):
        export_day(cube.spec.url, DAY, "jpeg", tmp_path / "x.jpg")
    assert not list(tmp_path.iterdir())


def test_cli_export_finds_the_cube_through_latest_json(
    cube: Cube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "smdown.toml"
    root = Path(cube.spec.url).parent
    cfg.write_text(f'[output]\nstore = "{root}"\n')
    out = tmp_path / "q.png"
    args = ["--config", str(cfg), "export", "--date", str(DAY), "--format", "png", "--out"]
    assert main([*args, str(out)]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    assert main([*args[:-5], "--date", "2021-03-20", "--format", "png"]) == 1
    assert "has not been published" in capsys.readouterr().err
