"""Training table: pairing through the maps' feature block, bad input counted, schema.

The first part uses in-memory sources (the ``Source`` protocol over small
lattices, generated here with fixed seeds) so the pairing logic is tested
alone and fast; the synthetic-world test at the end runs the real readers on
real-format files.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipeline.table.build as build_mod
from grids import Grid
from models.features import CATEGORICALS, FEATURE_NAMES
from pipeline.config import TableConfig
from pipeline.sources import NativeRaster, Provenance, build_feature_block
from pipeline.sources.base import MissingInputError, window_rows_cols
from pipeline.sources.padding import choose_composite, composite_starts
from pipeline.table import DTYPES, read_table, write_table
from pipeline.table.build import build_table, target_grid_for

REGION = (-98.0, 35.0, -97.0, 36.0)
START = dt.date(2020, 6, 1)
N_DAYS = 12
TERRA = "modis-terra"  # the synthetic world here is MODIS Terra (its products are asserted)
NO_SMAP_DAY = START + dt.timedelta(days=4)


class FakeSource:
    """A Source over a lattice with values f(date) (None: static); optional gaps."""

    def __init__(
        self,
        variable: str,
        lattice: Grid,
        values: Callable[[dt.date | None], np.ndarray],
        *,
        period: int = 0,
        max_pad: int = 0,
        missing_dates: frozenset[dt.date] = frozenset(),
        composites: list[dt.date] | None = None,
    ) -> None:
        self.variable = variable
        self.lattice = lattice
        self.values = values
        self.period = period
        self.max_pad = max_pad
        self.missing_dates = missing_dates
        self.composites = composites
        self.reads = 0

    def available(self, date: dt.date | None) -> Provenance | None:
        if date is None or self.period == 0:
            return Provenance(self.variable, (f"{self.variable}.tif",), "fake")
        if date in self.missing_dates:
            return None
        if self.period == 1:
            return Provenance(
                self.variable, (f"{self.variable}_{date:%Y%m%d}.h5",), "fake", date, 1
            )
        assert self.composites is not None
        ch = choose_composite(date, self.composites, self.period, self.max_pad)
        if ch is None:
            return None
        return Provenance(
            self.variable,
            (f"{self.variable}_{ch.start}.tif",),
            "fake",
            ch.start,
            ch.days,
            ch.days_stale,
        )

    def native(
        self, date: dt.date | None, bounds: tuple[float, float, float, float]
    ) -> NativeRaster:
        prov = self.available(date)
        if prov is None:
            raise MissingInputError("fake", "nothing serves this day", variable=self.variable)
        self.reads += 1
        rc = window_rows_cols(self.lattice, bounds, 1)
        assert rc is not None
        r0, r1, c0, c1 = rc
        key = prov.composite_start if self.period > 1 else date
        data = self.values(key)[r0:r1, c0:c1]
        return NativeRaster(self.lattice.window(r0, r1, c0, c1), data, prov, self.lattice, (r0, c0))


def _lattice(res: float) -> Grid:
    return Grid.from_bounds((-98.5, 34.5, -96.5, 36.5), res, "EPSG:4326")


def _field(lattice: Grid, seed: int, lo: float, hi: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, lattice.shape).astype(np.float32)


def _daily(
    lattice: Grid, seed: int, lo: float, hi: float
) -> Callable[[dt.date | None], np.ndarray]:
    def f(date: dt.date | None) -> np.ndarray:
        assert date is not None
        return _field(lattice, seed * 100_000 + date.toordinal(), lo, hi)

    return f


def _static(arr: np.ndarray) -> Callable[[dt.date | None], np.ndarray]:
    return lambda date: arr


def fake_sources(*, koppen_missing: bool = False, elev_hole: bool = True) -> dict[str, FakeSource]:
    smap_l, modis_l, fine_l = _lattice(0.1), _lattice(0.01), _lattice(1 / 240)
    end = START + dt.timedelta(days=N_DAYS)
    starts8 = composite_starts(START - dt.timedelta(days=16), end, 8)
    starts8_gap = [s for s in starts8 if s != dt.date(2020, 6, 1)]  # DOY 153: padded days
    starts16 = composite_starts(START - dt.timedelta(days=32), end, 16)
    elev = _field(fine_l, 5, 200.0, 400.0)
    if elev_hole:
        elev[: fine_l.height // 2, : int(fine_l.width * 0.35)] = np.nan  # no DEM W of -97.8
    koppen = np.full(fine_l.shape, 14.0, dtype=np.float32)
    koppen[:, fine_l.width // 2 :] = 7.0
    tex = np.where(_field(fine_l, 6, 0, 1) < 0.5, 7.0, 9.0).astype(np.float32)
    src = {
        "smap": FakeSource(
            "smap",
            smap_l,
            _daily(smap_l, 1, 0.05, 0.45),
            period=1,
            missing_dates=frozenset({NO_SMAP_DAY}),
        ),
        "ndvi": FakeSource(
            "ndvi", modis_l, _daily(modis_l, 2, 0.1, 0.9), period=16, composites=starts16
        ),
        "lst": FakeSource(
            "lst",
            modis_l,
            _daily(modis_l, 3, 10.0, 40.0),
            period=8,
            max_pad=7,
            composites=starts8_gap,
        ),
        "precip": FakeSource(
            "precip", _lattice(0.05), _daily(_lattice(0.05), 4, 0.0, 20.0), period=1
        ),
        "sand": FakeSource("sand", fine_l, _static(_field(fine_l, 7, 10, 80))),
        "clay": FakeSource("clay", fine_l, _static(_field(fine_l, 8, 5, 50))),
        "ph": FakeSource("ph", fine_l, _static(_field(fine_l, 9, 5, 8))),
        "et": FakeSource(
            "et", modis_l, _daily(modis_l, 10, 0.5, 5.0), period=8, max_pad=7, composites=starts8
        ),
        "elevation": FakeSource("elevation", fine_l, _static(elev)),
        "texture": FakeSource("texture", fine_l, _static(tex)),
        "landcover": FakeSource(
            "landcover", modis_l, _static(np.full(modis_l.shape, 10.0, np.float32))
        ),
        "koppen": FakeSource("koppen", fine_l, _static(koppen)),
    }
    if koppen_missing:
        src["koppen"].available = lambda date: None  # type: ignore[method-assign]
    return src


def insitu(n_sites: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    lat = rng.uniform(35.02, 35.98, n_sites)
    lon = rng.uniform(-97.98, -97.02, n_sites)
    lon[0], lat[0] = -99.5, 35.5  # outside the target region
    lon[1], lat[1] = -97.9, 35.9  # in the DEM hole
    ids = [f"ISMN:NET:S{i:02d}" for i in range(n_sites)]
    sites = pd.DataFrame({"site_id": ids, "network": "NET", "group": "NET", "lat": lat, "lon": lon})
    days = pd.date_range(START, periods=N_DAYS, freq="D")
    daily = pd.DataFrame(
        [(s, d, rng.uniform(0.05, 0.45)) for s in ids for d in days],
        columns=["site_id", "date", "sm"],
    )
    daily = daily.merge(sites[["site_id", "network", "lat", "lon"]], on="site_id")
    return daily, sites


@pytest.fixture(scope="module")
def grid() -> Grid:
    return target_grid_for("conus-90m", REGION)


@pytest.fixture(scope="module")
def built(grid: Grid) -> build_mod.TableResult:
    daily, sites = insitu()
    return build_table(daily, sites, fake_sources(), grid, TableConfig(n_folds=3))


def test_rows_equal_the_map_feature_block_bit_for_bit(
    grid: Grid, built: build_mod.TableResult
) -> None:
    table = built.table
    assert len(table) > 0
    src = fake_sources()
    for day in (START, START + dt.timedelta(days=9)):
        # A map tile covering all stations, natives read over the tile as the maps do.
        rows = table[table["date"] == pd.Timestamp(day)]
        r0, r1 = int(rows["row"].min()) - 7, int(rows["row"].max()) + 5
        c0, c1 = int(rows["col"].min()) - 3, int(rows["col"].max()) + 9
        tile = grid.window(r0, r1, c0, c1)
        natives = {n: s.native(day, tile.bounds) for n, s in src.items()}
        block = build_feature_block(natives, tile)
        for _, row in rows.iterrows():
            r, c = int(row["row"]) - r0, int(row["col"]) - c0
            got = row[list(FEATURE_NAMES)].to_numpy(np.float32)
            np.testing.assert_array_equal(got, block.x[:, r, c])
            assert got.tobytes() == block.x[:, r, c].tobytes()
            assert (
                row[list(CATEGORICALS)].to_numpy(np.int16).tolist() == block.cats[:, r, c].tolist()
            )


def test_site_pixel_and_provenance(grid: Grid, built: build_mod.TableResult) -> None:
    t = built.table
    r, c = grid.xy_to_rowcol(t["lon"].to_numpy(), t["lat"].to_numpy())
    assert (r == t["row"]).all() and (c == t["col"]).all()
    # LST composite of DOY 153 (2020-06-01) is absent: June 1-8 are served by DOY 145
    # (2020-05-24..31), 1..8 days stale; from June 9 the DOY 161 composite serves, 0 stale.
    june = t[t["date"] <= pd.Timestamp("2020-06-08")]
    assert (june["lst_composite"] == pd.Timestamp("2020-05-24")).all()
    np.testing.assert_array_equal(
        june["lst_days_stale"], (june["date"] - pd.Timestamp("2020-05-31")).dt.days
    )
    later = t[t["date"] >= pd.Timestamp("2020-06-09")]
    assert (later["lst_days_stale"] == 0).all() and (later["et_days_stale"] == 0).all()
    # 16-day NDVI: DOY 145 (May 24) then DOY 161 (June 9).
    assert (june["ndvi_composite"] == pd.Timestamp("2020-05-24")).all()
    assert (later["ndvi_composite"] == pd.Timestamp("2020-06-09")).all()
    assert set(t["smap_file"]) == {f"smap_{d:%Y%m%d}.h5" for d in t["date"].dt.date}


def test_bad_input_is_counted_not_fatal(built: build_mod.TableResult) -> None:
    rep = built.report
    steps = {s.name: s for s in rep.steps}
    n_days = N_DAYS
    assert steps[build_mod.S_READ].rows == 30 * n_days
    assert rep.sites_outside_grid == ("ISMN:NET:S00",)
    assert steps[build_mod.S_GRID].rows == 29 * n_days
    assert rep.dates_without_smap == (NO_SMAP_DAY,)
    assert steps[build_mod.S_SMAP].rows == 29 * (n_days - 1)
    # The DEM hole: site S01 has no elevation on any day; its rows are dropped.
    assert "ISMN:NET:S01" in rep.sites_without_coverage["elevation"]
    assert "ISMN:NET:S01" not in set(built.table["site_id"])
    # LST padding reaches 7 days past DOY 145's end (May 31): June 8 is 8 days: missing.
    assert rep.missing_rows_by_input["lst"] >= 28
    assert steps[build_mod.S_INPUTS].rows == len(built.table)
    assert not built.table[list(FEATURE_NAMES)].isna().any().any()
    assert any("outside the target grid" in line for line in rep.lines())


def test_missing_static_layer_is_reported(grid: Grid) -> None:
    daily, sites = insitu(n_sites=6)
    res = build_table(daily, sites, fake_sources(koppen_missing=True), grid, TableConfig(n_folds=2))
    assert "koppen" in res.report.missing_static
    assert len(res.table) == 0
    steps = {s.name: s.rows for s in res.report.steps}
    assert steps[build_mod.S_SMAP] > 0 and steps[build_mod.S_STATIC] == 0
    assert list(res.table.columns) == list(build_mod.COLUMNS)


def test_static_layers_read_once_and_block_function_is_the_maps(
    grid: Grid, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Grid] = []

    def spy(inputs: dict[str, object], target: Grid) -> object:
        calls.append(target)
        return build_feature_block(inputs, target)  # type: ignore[arg-type]

    monkeypatch.setattr(build_mod, "build_feature_block", spy)
    daily, sites = insitu(n_sites=5)
    src = fake_sources()
    res = build_table(daily, sites, src, grid, TableConfig(n_folds=2))
    steps = {s.name: s.rows for s in res.report.steps}
    assert len(calls) == steps[build_mod.S_SMAP]  # one block per site-day with SMAP
    assert all(g.shape == (1, 1) for g in calls)
    assert src["sand"].reads == 1 and src["koppen"].reads == 1  # one group, static once
    assert src["smap"].reads == N_DAYS - 1


def test_schema_splits_weights_and_parquet_roundtrip(
    built: build_mod.TableResult, tmp_path: Path
) -> None:
    t = built.table
    for col, dtype in DTYPES.items():
        assert str(t[col].dtype) == dtype, col
    assert (t.groupby("site_id")["split"].nunique() == 1).all()
    assert set(t["texture_name"]) <= {"loam", "sandy loam"}
    assert set(t["koppen_name"]) <= {"Cfa", "BSk"}
    train = t["split"] == "train"
    assert t.loc[train, "w_texture"].sum() == pytest.approx(train.sum())
    path = write_table(t, tmp_path / "table.parquet", {"note": "test"})
    back = read_table(path)
    pd.testing.assert_frame_equal(back, t)


# -- the synthetic world in real formats, read by the real readers -------------------------
SYN_REGION = (-97.6, 35.4, -97.2, 35.8)
SYN_START, SYN_END = dt.date(2020, 6, 1), dt.date(2020, 6, 8)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    synth = pytest.importorskip("pipeline.synth")
    root = tmp_path_factory.mktemp("world")
    spec = synth.WorldSpec(
        region=SYN_REGION,
        start=SYN_START,
        end=SYN_END,
        n_stations=10,
        n_ameriflux=2,
        seed=3,
        family=TERRA,
    )
    synth.write_world(spec, root)
    return root


@pytest.fixture(scope="module")
def world_insitu(world: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from pipeline.config import InsituConfig
    from pipeline.insitu import build_insitu

    res = build_insitu(world / "ISMN", world / "AmeriFlux", InsituConfig())
    return res.daily, res.sites


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["training", "maps"])
def test_synthetic_world_rows_equal_map_tile_blocks(
    world: Path, world_insitu: tuple[pd.DataFrame, pd.DataFrame], mode: str
) -> None:
    from pipeline.sources import Catalog

    grid = target_grid_for("conus-90m", SYN_REGION)
    daily, sites = world_insitu
    catalog = Catalog.from_root(world, family=TERRA)
    res = build_table(daily, sites, catalog, grid, TableConfig(n_folds=3), mode=mode)  # type: ignore[arg-type]
    t = res.table
    # Daily MOD21A1D LST (maps) has cloud gaps the padded 8-day composite fills.
    assert t["site_id"].nunique() >= (8 if mode == "training" else 3)
    assert len(t) >= (20 if mode == "training" else 5)
    srcs = catalog.sources(mode)  # type: ignore[arg-type]
    for day in sorted(t["date"].unique()):
        # The map's tile: the whole region grid, natives read over its bounds.
        date = pd.Timestamp(day).date()
        natives = {n: s.native(date, grid.bounds) for n, s in srcs.items()}
        block = build_feature_block(natives, grid)
        rows = t[t["date"] == day]
        r, c = rows["row"].to_numpy(), rows["col"].to_numpy()
        got = rows[list(FEATURE_NAMES)].to_numpy(np.float32)
        want = block.x[:, r, c].T
        assert got.tobytes() == want.tobytes(), date
        assert (rows[list(CATEGORICALS)].to_numpy(np.int16) == block.cats[:, r, c].T).all()
    # And a few rows against natives read over the site's own 1-pixel window.
    for _, row in t.head(6).iterrows():
        date = row["date"].date()
        window = grid.window(
            int(row["row"]), int(row["row"]) + 1, int(row["col"]), int(row["col"]) + 1
        )
        natives = {n: s.native(date, window.bounds) for n, s in srcs.items()}
        block = build_feature_block(natives, window)
        assert row[list(FEATURE_NAMES)].to_numpy(np.float32).tobytes() == block.x[:, 0, 0].tobytes()
    expect_lst = "MOD11A2" if mode == "training" else "MOD21A1D"
    assert srcs["lst"].available(SYN_START).product.startswith(expect_lst)  # type: ignore[union-attr]


@pytest.mark.slow
def test_synthetic_world_bad_input_counted(
    world: Path, world_insitu: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    from pipeline.sources import Catalog
    from pipeline.sources.catalog import ProductPaths

    grid = target_grid_for("conus-90m", SYN_REGION)
    daily, sites = world_insitu
    # A site outside the region (and every source's coverage).
    far = daily[daily["site_id"] == daily["site_id"].iloc[0]].assign(
        site_id="ISMN:FAR:F1", lat=44.0, lon=-110.0
    )
    daily2 = pd.concat([daily, far], ignore_index=True)
    # SMAP without one day: a tree holding every day folder but the third.
    smap = tmp_path / "SMAP" / "SPL3SMP_E.006"
    smap.mkdir(parents=True)
    day_dirs = sorted((world / "SMAP" / "SPL3SMP_E.006").iterdir())
    for d in day_dirs[:2] + day_dirs[3:]:
        shutil.copytree(d, smap / d.name)
    dropped_day = dt.datetime.strptime(day_dirs[2].name, "%Y.%m.%d").date()
    # Koeppen missing altogether.
    paths = ProductPaths.under(world, smap=str(tmp_path / "SMAP"), koppen=str(tmp_path / "none"))
    res = build_table(daily2, sites, Catalog(paths, family=TERRA), grid, TableConfig(n_folds=3))
    rep = res.report
    assert rep.sites_outside_grid == ("ISMN:FAR:F1",)
    assert dropped_day in rep.dates_without_smap
    assert "koppen" in rep.missing_static
    assert len(res.table) == 0  # no Koeppen class: no usable row, and no crash
    text = "\n".join(rep.lines())
    assert "static layer koppen missing" in text and "without any SMAP file" in text


@pytest.mark.slow
def test_table_command_on_the_synthetic_world(
    world: Path,
    world_insitu: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline.cli import main
    from pipeline.insitu import InsituResult, QCReport

    daily, sites = world_insitu
    InsituResult(daily, sites, QCReport()).write(tmp_path / "insitu.parquet")
    cfg = tmp_path / "smdown.toml"
    cfg.write_text(
        f'[sources]\nroot = "{world}"\nfamily = "{TERRA}"\n\n'
        f"[grid]\nregion = {list(SYN_REGION)}\n\n"
        f'[table]\npath = "{tmp_path / "table.parquet"}"\nn_folds = 3\n'
    )
    assert main(["--config", str(cfg), "table"]) == 0
    out = capsys.readouterr().out
    assert build_mod.S_READ in out and build_mod.S_INPUTS in out and "wrote" in out
    t = read_table(tmp_path / "table.parquet")
    assert len(t) > 0 and set(t["split"]) <= {"train", "validation"}
