"""``smdown point``: the cube's series at points equals an xarray selection, reads only the
chunks holding the points, and writes CSV or Parquet with the flags decoded."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from grids import Grid
from pipeline.cli import main
from pipeline.cube import (
    DAY_FINAL,
    DAY_PROVISIONAL,
    FLAG_BITS,
    Cube,
    CubeLayout,
    ModelInfo,
    StoreSpec,
    encode_tile,
    write_region,
)
from pipeline.point import Point, PointError, read_points, series

ARCSEC3 = 1.0 / 1200.0
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -98.0, 0.0, -ARCSEC3, 36.0), (300, 400))
CHUNK = 100
DAYS = [dt.date(2021, 3, 14), dt.date(2021, 3, 15), dt.date(2021, 3, 17)]
MODEL = ModelInfo("dense", "34" * 32, "0.1.0", "test")
NAME = "dense-343434343434.zarr"


@pytest.fixture(scope="module")
def cube(tmp_path_factory: pytest.TempPathFactory) -> Cube:
    root = tmp_path_factory.mktemp("cube")
    c = Cube(StoreSpec(str(root / NAME)), CubeLayout(GRID, CHUNK, 2021))
    c.create(MODEL, 2021)
    rng = np.random.default_rng(11)
    for k, day in enumerate(DAYS):
        mean = rng.uniform(0.02, 0.45, GRID.shape).astype(np.float32)
        flags = np.zeros(GRID.shape, np.uint8)
        flags[0:50, 0:50] = FLAG_BITS["water"]
        flags[120:140, :] = FLAG_BITS["smap_missing"] | FLAG_BITS["input_missing"]
        mean[flags != 0] = np.nan
        arrays = encode_tile(mean, mean * 0.2, mean * 0.1, flags)
        write_region(c.spec, c.layout, day, 0, 0, arrays)
        c.set_day_status(day, DAY_FINAL if k else DAY_PROVISIONAL)
    c.consolidate()
    (root / "latest.json").write_text(json.dumps({"store": NAME}))
    return c


class _ChunkReads:
    """Files opened under a folder, seen through Python's ``open`` audit event (whatever
    zarr version or store class reads them)."""

    active: _ChunkReads | None = None
    installed = False

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)
        self.paths: list[str] = []

    @classmethod
    def _hook(cls, event: str, args: tuple[object, ...]) -> None:
        me = cls.active
        if me is not None and event == "open" and isinstance(args[0], str | Path):
            path = str(args[0])
            if path.startswith(me.folder):
                me.paths.append(path[len(me.folder) + 1 :])

    def __enter__(self) -> _ChunkReads:
        if not _ChunkReads.installed:
            sys.addaudithook(_ChunkReads._hook)
            _ChunkReads.installed = True
        _ChunkReads.active = self
        return self

    def __exit__(self, *exc: object) -> None:
        _ChunkReads.active = None

    def chunks(self, var: str) -> set[tuple[int, ...]]:
        """Chunk indices (t, row, col) of ``var`` read (zarr 2 'v/0.1.2', zarr 3
        'v/c/0/1/2')."""
        out = set()
        for p in self.paths:
            parts = p.replace("\\", "/").split("/")
            if parts[0] != var or len(parts) < 2 or parts[-1].startswith(".") or "zarr" in p:
                continue
            key = parts[1:] if parts[1] != "c" else parts[2:]
            idx = key[0].split(".") if len(key) == 1 else key
            if all(i.isdigit() for i in idx):
                out.add(tuple(int(i) for i in idx))
        return out


@pytest.fixture
def no_cwd_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_series_equals_an_xarray_selection(cube: Cube) -> None:
    ds = xr.open_zarr(cube.spec.url, consolidated=True)
    pts = [
        Point("a", 35.9496, -97.9496),
        Point("b", 35.8601, -97.7202),
        Point("w", 35.9903, -97.9897),
    ]
    got = series(cube.spec.url, pts, DAYS[0], DAYS[-1])
    assert list(got.name.unique()) == ["a", "b", "w"]
    for p in pts:
        rows = got[got.name == p.name]
        want = ds.sel(lat=p.lat, lon=p.lon, method="nearest").sel(
            time=[np.datetime64(d) for d in DAYS]
        )
        assert list(rows.date.dt.date) == DAYS  # the unpublished 2021-03-16 is left out
        for var in ("soil_moisture", "soil_moisture_sd", "member_spread"):
            np.testing.assert_array_equal(rows[var].to_numpy(), want[var].values)
        assert float(rows.pixel_lat.iloc[0]) == pytest.approx(float(want.lat))
        assert float(rows.pixel_lon.iloc[0]) == pytest.approx(float(want.lon))
        assert list(rows.day_status) == [DAY_PROVISIONAL, DAY_FINAL, DAY_FINAL]
        flags = want.quality_flag.values.astype(int)
        assert list(rows.quality_flag) == list(flags)
        assert list(rows.water) == list((flags & FLAG_BITS["water"]) != 0)
    assert got[got.name == "w"].water.all() and got[got.name == "w"].soil_moisture.isna().all()
    assert not got[got.name == "a"].water.any()
    assert got.smap.isna().all()  # no SMAP reader given


def test_only_the_chunks_holding_the_point_are_read(cube: Cube) -> None:
    p = Point("b", 35.8601, -97.7202)
    row = int((36.0 - p.lat) / ARCSEC3)
    col = int((p.lon + 98.0) / ARCSEC3)
    with _ChunkReads(Path(cube.spec.url)) as reads:
        got = series(cube.spec.url, [p], DAYS[0], DAYS[1])
    assert len(got) == 2
    t0 = (DAYS[0] - dt.date(2021, 1, 1)).days
    want = {(t0, row // CHUNK, col // CHUNK), (t0 + 1, row // CHUNK, col // CHUNK)}
    for var in ("soil_moisture", "soil_moisture_sd", "member_spread", "quality_flag"):
        assert reads.chunks(var) == want, var
    # 3 x 4 spatial chunks a day exist: a whole-day read would open 12 per variable.


def test_point_outside_the_grid_and_bad_points_file(cube: Cube, tmp_path: Path) -> None:
    with pytest.raises(PointError, match=r"lat 40.0, lon -97.9\) is outside the cube's grid"):
        series(cube.spec.url, [Point("far", 40.0, -97.9)], DAYS[0], DAYS[1])
    bad = tmp_path / "pts.csv"
    bad.write_text("name,lat,lon\nok,35.9,-97.9\nbroken,north,-97.9\n")
    with pytest.raises(PointError, match=r"pts.csv, line 3: lat/lon"):
        read_points(bad)
    bad.write_text("site,latitude,lon\n")
    with pytest.raises(PointError, match="lacks name, lat; expected 'name,lat,lon'"):
        read_points(bad)


def test_cli_point_writes_csv_and_parquet(
    cube: Cube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "smdown.toml"
    cfg.write_text(f'[output]\nstore = "{Path(cube.spec.url).parent}"\n')
    base = ["--config", str(cfg), "point", "--start", "2021-03-01", "--end", "2021-03-31"]
    out = tmp_path / "one.csv"
    args = [*base, "--lat", "35.9496", "--lon", "-97.9496", "--name", "x", "--no-smap"]
    assert main([*args, "--out", str(out)]) == 0
    assert "3 published day(s)" in capsys.readouterr().out
    csv = pd.read_csv(out)
    assert list(csv.columns[:7]) == [
        "name",
        "lat",
        "lon",
        "pixel_lat",
        "pixel_lon",
        "date",
        "day_status",
    ]
    assert {"soil_moisture", "smap", "quality_flag", "water", "smap_missing"} <= set(csv.columns)
    assert list(csv.date) == [d.isoformat() for d in DAYS]
    ds = xr.open_zarr(cube.spec.url, consolidated=True)
    want = ds.soil_moisture.sel(lat=35.9496, lon=-97.9496, method="nearest").sel(
        time=[np.datetime64(d) for d in DAYS]
    )
    np.testing.assert_allclose(csv.soil_moisture, want.values, rtol=1e-5)

    pts = tmp_path / "pts.csv"
    pts.write_text("name,lat,lon\na,35.9496,-97.9496\nb,35.8601,-97.7202\n")
    pq = tmp_path / "many.parquet"
    assert main([*base, "--points", str(pts), "--no-smap", "--out", str(pq)]) == 0
    table = pd.read_parquet(pq)
    assert list(table.name.unique()) == ["a", "b"] and len(table) == 6

    # refused before reading: wrong suffix, missing folder; nothing written
    assert main([*args, "--out", str(tmp_path / "x.xlsx")]) == 1
    assert "suffix must be .csv or .parquet" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "nope" / "x.csv")]) == 1
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'nope' / 'x.csv'}: folder" in err and "does not exist" in err
    assert main([*base, "--lat", "35.9", "--no-smap", "--out", str(out)]) == 2
    assert "--lat and --lon" in capsys.readouterr().err


def test_smap_beside_is_the_value_the_training_table_pairs_with_the_pixel(
    tmp_path: Path,
) -> None:
    """SMAP read by ``smdown point`` at a pixel equals the ``smap`` column the training
    table builds for a station in that pixel (the same granule, the same sampling)."""
    from grids.named import named_grid
    from pipeline.config import TableConfig
    from pipeline.point import smap_sampler
    from pipeline.sources.catalog import Catalog
    from pipeline.synth import WorldSpec, write_world
    from pipeline.table.build import build_table

    region = (-97.7, 35.3, -97.6, 35.4)
    start, end = dt.date(2020, 6, 1), dt.date(2020, 6, 4)
    write_world(
        WorldSpec(
            region=region, start=start, end=end, seed=3, n_stations=1, n_ameriflux=0, spinup_days=1
        ),
        tmp_path / "world",
    )
    catalog = Catalog.from_root(tmp_path / "world")
    lat, lon = 35.3517, -97.6483
    days = pd.date_range(start, end)
    daily = pd.DataFrame(
        {"site_id": "X:p", "date": days, "sm": 0.2, "lat": lat, "lon": lon, "n_obs": 1}
    )
    grid = named_grid("conus-90m")
    table = build_table(daily, None, catalog, grid, TableConfig(), mode="training").table
    row, col = grid.xy_to_rowcol(lon, lat)
    pixel = grid.window(int(row), int(row) + 1, int(col), int(col) + 1)
    at = smap_sampler(catalog)
    got = {d.date(): at(d.date(), pixel) for d in days}
    assert any(np.isfinite(v) for v in got.values())
    for _, r in table.iterrows():
        assert got[pd.Timestamp(r.date).date()] == pytest.approx(float(r.smap), abs=0)


def test_cli_export_takes_a_date_range_and_a_bounding_box(
    cube: Cube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import rasterio

    cfg = tmp_path / "smdown.toml"
    cfg.write_text(f'[output]\nstore = "{Path(cube.spec.url).parent}"\n')
    box = "-97.9,35.8,-97.7,35.95"
    args = ["--config", str(cfg), "export", "--format", "cog", "--bbox", box]
    out = tmp_path / "range"
    assert main([*args, "--start", "2021-03-14", "--end", "2021-03-16", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 day(s) of 2021-03-14..2021-03-16 written" in text
    assert "not published (skipped): 2021-03-16" in text
    files = sorted(p.name for p in out.iterdir())
    assert files == ["dense-343434343434_2021-03-14.tif", "dense-343434343434_2021-03-15.tif"]
    ds = xr.open_zarr(cube.spec.url, consolidated=True)
    want = ds.soil_moisture.sel(time="2021-03-15", lat=slice(35.95, 35.8), lon=slice(-97.9, -97.7))
    with rasterio.open(out / files[1]) as src:
        assert (src.height, src.width) == want.shape == (180, 240)
        w, s, e, n = src.bounds
        assert (w, s, e, n) == pytest.approx((-97.9, 35.8, -97.7, 35.95), abs=1e-9)
        got = src.read(1, masked=True).astype(np.float64) * src.scales[0]
    np.testing.assert_allclose(got.filled(np.nan), want.values, atol=5e-5)
    # a box with three numbers, a box outside the cube: one line naming --bbox
    assert main([*args[:-1], "-97.9,35.8,-97.7", "--date", "2021-03-14"]) == 2
    assert "has 3 number(s); expected four: west,south,east,north" in capsys.readouterr().err
    assert main([*args[:-1], "-90,30,-89,31", "--date", "2021-03-14"]) == 1
    assert "--bbox -90.0,30.0,-89.0,31.0 does not overlap the cube" in capsys.readouterr().err


def test_export_out_unwritable_names_the_users_path(
    cube: Cube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "smdown.toml"
    cfg.write_text(f'[output]\nstore = "{Path(cube.spec.url).parent}"\n')
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    # (root, as CI runs, may write anywhere on disk: /proc and a file's "subfolder" refuse)
    for out in (a_file / "day.tif", Path("/proc/smdown-out/day.tif")):
        args = ["--config", str(cfg), "export", "--format", "cog", "--date", "2021-03-14"]
        assert main([*args, "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"smdown: error: --out {out}: ") and err.count("\n") == 1
        assert "choose another --out" in err and ".tmp" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "smdown.toml"]


def test_quicklook_masks_are_distinct_and_dry_values_are_not_white(
    cube: Cube, tmp_path: Path
) -> None:
    import itertools

    import matplotlib
    import matplotlib.image as mpimg
    from matplotlib.colors import to_rgb

    from pipeline.export import MASKS, SM_CMAP, SM_RANGE, export_day

    path = export_day(cube.spec.url, DAYS[1], "png", tmp_path / "q.png")
    img = mpimg.imread(path)[..., :3]
    for name in ("water", "missing"):  # this cube has water and a missing-input band
        hits = (np.abs(img - np.array(to_rgb(MASKS[name]))) < 2 / 255).all(axis=-1).sum()
        assert hits > 100, name
    cmap = matplotlib.colormaps[SM_CMAP]
    map_colours = np.array([cmap(v)[:3] for v in np.linspace(0, 1, 256)])
    for a, b in itertools.combinations(MASKS.values(), 2):  # masks far apart
        assert np.abs(np.array(to_rgb(a)) - np.array(to_rgb(b))).sum() > 0.3, (a, b)
    for name, colour in MASKS.items():  # and far from every soil-moisture colour
        dist = np.abs(map_colours - np.array(to_rgb(colour))).sum(axis=1).min()
        assert dist > 0.25, name
    lo, hi = SM_RANGE
    for v in (0.0, 0.05, 0.1):  # dry values: saturated, clearly not white
        r, g, b = cmap((v - lo) / (hi - lo))[:3]
        assert min(r, g, b) < 0.5 and max(r, g, b) - min(r, g, b) > 0.5, v
