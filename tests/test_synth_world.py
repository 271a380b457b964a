"""A small synthetic world written to disk: every file read back and checked against the generator.

One world (0.4 x 0.4 degree, 8 days, 12 ISMN stations, 3 AmeriFlux sites) is
written once per module; the project's own readers (pipeline.sources,
pipeline.insitu) read it with no knowledge that it is synthetic.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from pipeline.synth import WorldManifest, WorldSpec, products, smap, write_world
from pipeline.synth import insitu as synth_insitu
from pipeline.synth import modis as synth_modis
from pipeline.synth.world import DailyModel, chirps_cells, static_tile
from pipeline.synth.write import old_release_days, simulated_days, start_model

TERRA = "modis-terra"  # this world's layout tests are about the MODIS GeoTIFF tiles
SPEC = WorldSpec(
    region=(-97.9, 35.1, -97.5, 35.5),
    start=dt.date(2020, 4, 1),
    end=dt.date(2020, 4, 8),
    seed=0,
    n_stations=12,
    n_ameriflux=3,
    family=TERRA,
)
# The sub-cell standard deviation of the truth inside a 9 km SMAP cell (m3 m-3), averaged
# over cells and days; documented in pipeline/synth/README.md (demo world: about 0.03-0.04).
SUBCELL_STD_RANGE = (0.02, 0.06)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WorldManifest:
    return write_world(SPEC, tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def days_fields(world: WorldManifest) -> dict[dt.date, dict[str, np.ndarray]]:
    """The writer's daily fields regenerated (same model, same spin-up) for every day."""
    model = DailyModel(SPEC, SPEC.domain_grid())
    start_model(model, SPEC)
    first, _ = simulated_days(SPEC)
    out = {}
    day = first
    while day <= SPEC.end:
        f = model.step()
        if day >= SPEC.start:
            out[day] = f.as_dict()
        day += dt.timedelta(days=1)
    return out


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), {
            "nodata": src.nodata,
            "crs": src.crs,
            "transform": src.transform,
            "shape": (src.height, src.width),
            "scale": src.scales[0],
            "offset": src.offsets[0],
            "dtype": src.dtypes[0],
        }


# -- layout ----------------------------------------------------------------------------


def test_manifest_lists_existing_files_in_the_contract_layout(world: WorldManifest) -> None:
    root = world.root
    files = world.all_files()
    assert all(p.exists() for p in files)
    rel = [p.relative_to(root).as_posix() for p in files]
    pats = {
        "smap": r"SMAP/SPL3SMP_E\.006/\d{4}\.\d\d\.\d\d/SMAP_L3_SM_P_E_\d{8}_R\d{5}_\d{3}\.h5",
        "modis": r"MODIS/(MOD11A2|MOD21A1D|MOD13A1|MOD13Q1|MOD16A2|MCD12Q1)\.061/\d{4}\.\d\d\.\d\d/"
        r"\1\.A\d{7}\.h\d\dv\d\d\.061\.\d{13}_\w+\.tif",
        "chirps": r"CHIRPS/global_daily/tifs/p05/\d{4}/chirps-v2\.0\.\d{4}\.\d\d\.\d\d\.tif",
        "soilgrids": r"SoilGrids/(sand|clay|phh2o)/\1_0-5cm_mean\.tif",
        "merit": r"MERIT_DEM/n35w100_dem\.tif",
        "koppen": r"Koeppen/Beck_KG_V1_present_0p0083\.tif",
        "ismn": r"ISMN/\w+/[\w-]+/.+\.(stm|csv)",
        "ameriflux": r"AmeriFlux/AMF_US-\w{3}_BASE-BADM_\d+-\d+\.zip",
    }
    for name, pat in pats.items():
        assert any(re.fullmatch(pat, r) for r in rel), name
    for short in ("MOD11A2", "MOD21A1D", "MOD13A1", "MOD13Q1", "MOD16A2", "MCD12Q1"):
        assert world.files[short], short
    assert len(world.files["chirps"]) == len(SPEC.days)
    assert (root / "truth" / "soil_moisture_90m.zarr").is_dir()
    meta = json.loads((root / "world.json").read_text())
    assert meta["seed"] == 0 and meta["region"] == list(SPEC.region)
    assert len([s for s in meta["stations"] if s["kind"] == "ismn"]) == 12


# -- SMAP ------------------------------------------------------------------------------


def test_smap_granules_follow_the_dmr_and_hold_the_generated_retrievals(
    world: WorldManifest, days_fields: dict[dt.date, dict[str, np.ndarray]]
) -> None:
    domain = SPEC.domain_grid()
    st = static_tile(SPEC, domain)
    cells = smap.smap_cells(domain, st["landcover"])
    r0, c0 = int(cells.rows[0]), int(cells.cols[0])
    r1, c1 = r0 + len(cells.rows), c0 + len(cells.cols)
    seen = 0
    for day in SPEC.days:
        path = smap.granule_path(world.root, day, SPEC.smap_crid)
        f = days_fields[day]
        truth9 = cells.index.mean(f["soil_moisture"])
        want = smap.retrievals(
            SPEC,
            day,
            cells,
            truth9,
            cells.index.mean(f["ndvi"]),
            cells.index.mean(f["precip"], land_only=False),
            cells.index.mean(f["tair"], land_only=False),
            SPEC.smap_crid,
        )
        with h5py.File(path, "r") as h:
            ext = h["Metadata/Extent"].attrs
            assert ext["rangeBeginningDateTime"].decode().startswith(day.isoformat())
            assert h["Metadata/DatasetIdentification"].attrs["shortName"] == b"SPL3SMP_E"
            for name, suffix in (("AM", ""), ("PM", "_pm")):
                g = h[f"Soil_Moisture_Retrieval_Data_{name}"]
                sm = g["soil_moisture" + suffix]
                assert sm.shape == (1624, 3856) and sm.dtype == np.float32
                assert sm.attrs["_FillValue"][0] == -9999.0
                assert sm.attrs["units"] == b"cm**3/cm**3"
                assert g["retrieval_qual_flag" + suffix].attrs["_FillValue"][0] == 65534
                block = sm[r0:r1, c0:c1]
                np.testing.assert_array_equal(block, want[name].soil_moisture)
                np.testing.assert_array_equal(
                    g["retrieval_qual_flag" + suffix][r0:r1, c0:c1],
                    want[name].retrieval_qual_flag,
                )
                assert sm[0, 0] == -9999.0 and sm[800, 100] == -9999.0  # outside: fill
                ok = block > 0
                seen += int(ok.sum())
                if ok.any():
                    assert block[ok].min() >= 0.02 and block[ok].max() <= 0.5
                    lat = g["latitude" + suffix][r0:r1, c0:c1]
                    np.testing.assert_allclose(lat[ok], cells.lat[ok])
    assert seen > 0


def test_smap_has_swath_gaps_flags_and_an_older_release(world: WorldManifest) -> None:
    old = old_release_days(SPEC)
    assert old and all(smap.granule_path(world.root, d, SPEC.smap_old_crid).exists() for d in old)
    coverage, flagged = [], 0
    for day in SPEC.days:
        with h5py.File(smap.granule_path(world.root, day, SPEC.smap_crid), "r") as h:
            am = h["Soil_Moisture_Retrieval_Data_AM/soil_moisture"][300:420, 820:940]
            qf = h["Soil_Moisture_Retrieval_Data_AM/retrieval_qual_flag"][300:420, 820:940]
            coverage.append(int((am > 0).sum()))
            flagged += int(((qf & 1) == 1).sum())
    assert min(coverage) < max(coverage)  # the swaths move: some days see less
    assert flagged > 0  # some retrievals are not recommended


def test_truth_at_9km_correlates_with_smap(world: WorldManifest) -> None:
    assert world.stats["smap_truth_r"] > 0.8
    assert world.stats["smap_n_retrievals"] > 20


def test_subcell_variability_is_in_its_documented_range(world: WorldManifest) -> None:
    lo, hi = SUBCELL_STD_RANGE
    assert lo < world.stats["subcell_std_mean"] < hi


# -- rasters ---------------------------------------------------------------------------


def test_chirps_files_hold_the_generated_estimates(world: WorldManifest) -> None:
    grid = products.chirps_grid(SPEC)
    total = 0.0
    for day in SPEC.days:
        data, meta = _read(products.chirps_path(world.root, day))
        true, est = chirps_cells(SPEC, day, grid)
        np.testing.assert_array_equal(data, est)
        assert meta["nodata"] == -9999.0 and meta["dtype"] == "float32"
        assert meta["crs"].to_epsg() == 4326
        t = meta["transform"]
        assert abs(t.a - 0.05) < 1e-12 and abs(round(t.c / 0.05) * 0.05 - t.c) < 1e-9
        assert np.all(data >= 0)
        total += float(true.sum())
    assert total > 0  # it rained at least once in 8 days


def test_merit_soilgrids_koppen_hold_the_90m_statics(world: WorldManifest) -> None:
    domain = SPEC.domain_grid()
    st = static_tile(SPEC, domain)
    data, meta = _read(products.merit_path(world.root, "n35w100"))
    assert meta["shape"] == (6000, 6000) and meta["nodata"] == -9999.0
    r0 = round((40.0 - domain.bounds[3]) * 1200)
    c0 = round((domain.bounds[0] + 100.0) * 1200)
    h, w = domain.shape
    np.testing.assert_array_equal(data[r0 : r0 + h, c0 : c0 + w], st["elevation"])
    assert data[0, 0] == -9999.0
    _, want = products.soilgrids_values(domain, st)
    for prop in ("sand", "clay", "phh2o"):
        got, meta = _read(products.soilgrids_path(world.root, prop))
        np.testing.assert_array_equal(got, want[prop])
        assert meta["nodata"] == -32768 and meta["dtype"] == "int16"
        assert "Homolosine" in meta["crs"].to_wkt()
    inside = want["sand"] != -32768
    assert 0 < want["sand"][inside].min() and want["sand"][inside].max() < 1000  # g/kg
    _, kg = products.koppen_values(domain, st["koppen"])
    got, meta = _read(products.koppen_path(world.root))
    np.testing.assert_array_equal(got, kg)
    assert set(np.unique(got).tolist()) <= {0, 7, 14, 25}


def test_modis_layers_are_raw_integers_with_scale_fill_and_qc(world: WorldManifest) -> None:
    def one(short: str, layer: str) -> tuple[np.ndarray, dict]:
        paths = [p for p in world.files[short] if p.name.endswith(f"_{layer}.tif")]
        assert paths, (short, layer)
        return _read(paths[0])

    lst, meta = one("MOD11A2", "LST_Day_1km")
    assert meta["dtype"] == "uint16" and meta["nodata"] == 0 and meta["scale"] == 0.02
    assert meta["shape"] == (1200, 1200) and "Sinusoidal" in meta["crs"].to_wkt()
    k = lst[lst > 0] * 0.02
    assert k.size and 260 < k.min() and k.max() < 330  # kelvin, spring Oklahoma
    qc, _ = one("MOD11A2", "QC_Day")
    assert set(np.unique(qc).tolist()) <= {0, 1, 2, 3}
    daily, meta = one("MOD21A1D", "LST_1KM")
    dq, _ = one("MOD21A1D", "QC")
    assert meta["scale"] == 0.02 and np.all((daily == 0) == (dq >= 2))
    ndvi, meta = one("MOD13Q1", "250m_16_days_NDVI")
    assert meta["shape"] == (4800, 4800) and meta["nodata"] == -3000 and meta["scale"] == 1e-4
    v = ndvi[ndvi != -3000] * 1e-4
    assert v.size and -0.2 <= v.min() and v.max() <= 1.0 and 0.3 < v.mean() < 0.8
    rel, _ = one("MOD13A1", "500m_16_days_pixel_reliability")
    assert {0, 1} <= set(np.unique(rel).tolist())
    et, meta = one("MOD16A2", "ET_500m")
    assert meta["nodata"] == 32767 and meta["scale"] == 0.1 and meta["dtype"] == "int16"
    ok = et < 32700
    assert ok.any() and 0 <= et[ok].min() and et[ok].max() * 0.1 < 8 * 10  # mm per 8 days
    lc, meta = one("MCD12Q1", "LC_Type1")
    assert meta["nodata"] == 255 and {10, 12} <= set(np.unique(lc).tolist())


def test_modis_composites_follow_the_calendar(world: WorldManifest) -> None:
    starts = {p.parent.name for p in world.files["MOD11A2"]}
    assert starts == {"2020.03.29", "2020.04.06"}  # DOY 89 and 97 cover 1-8 April
    # 16-day NDVI: DOY 81 (21 March in a leap year) and 97 cover 1-8 April
    assert {p.parent.name for p in world.files["MOD13A1"]} == {"2020.03.21", "2020.04.06"}
    assert {p.parent.name for p in world.files["MCD12Q1"]} == {"2020.01.01"}
    assert synth_modis.composite_end(dt.date(2020, 12, 26), 8) == dt.date(2020, 12, 31)


# -- truth -----------------------------------------------------------------------------


def test_truth_zarr_opens_with_xarray_and_equals_the_generator(
    world: WorldManifest, days_fields: dict[dt.date, dict[str, np.ndarray]]
) -> None:
    import xarray as xr

    ds = xr.open_zarr(world.root / "truth" / "soil_moisture_90m.zarr")
    sm = ds["soil_moisture"]
    region = SPEC.region_grid()
    assert sm.dims == ("time", "lat", "lon") and sm.dtype == np.float32
    assert sm.shape == (len(SPEC.days), *region.shape)
    assert sm.encoding["chunks"] == (1, 480, 480)
    np.testing.assert_allclose(ds["lat"].values, region.y_coords())
    assert str(ds["time"].values[0])[:10] == "2020-04-01"
    domain = SPEC.domain_grid()
    ro = round((domain.bounds[3] - region.bounds[3]) * 1200)
    co = round((region.bounds[0] - domain.bounds[0]) * 1200)
    values = sm.values
    for i, day in enumerate(SPEC.days):
        want = days_fields[day]["soil_moisture"][ro : ro + 480, co : co + 480]
        np.testing.assert_allclose(values[i], want, atol=1e-4, equal_nan=True)


def test_lazy_daily_tile_agrees_with_the_written_truth(world: WorldManifest) -> None:
    import xarray as xr

    from pipeline.synth import daily_tile

    region = SPEC.region_grid()
    window = region.window(100, 220, 100, 260)
    lazy = daily_tile(SPEC, SPEC.end, window)["soil_moisture"]
    ds = xr.open_zarr(world.root / "truth" / "soil_moisture_90m.zarr")
    written = ds["soil_moisture"][-1, 100:220, 100:260].values
    diff = np.abs(lazy - written)
    # different spin-up starts: equal to within the store's memory after 45 days
    assert np.nanmax(diff) < 5e-3 and np.nanmean(diff) < 1e-3


# -- in situ ---------------------------------------------------------------------------


def _stm_files(root: Path) -> list[Path]:
    return sorted((root / "ISMN").rglob("*.stm"))


def test_ismn_header_and_static_variables_match_the_real_layout(realdata: Path) -> None:
    cosmos = (
        realdata / "TUW-GEO_ismn/tests/test_data/Data_seperate_files_header_20170810_20180809/"
        "COSMOS/ARM-1"
    )
    real = next(cosmos.glob("*.stm")).read_bytes().split(b"\n")[0].decode()
    st = synth_insitu.Station(
        "COSMOS", "ARM-1", 36.6054, -97.4878, 0, 0, 322.0,
        (synth_insitu.Sensor(0.0, 0.19, "Cosmic-ray-Probe"),), 10, 14, 36.0, 23.0, 0.46,
    )  # fmt: skip
    assert synth_insitu.ismn_header(st, st.sensors[0]) == real
    name = synth_insitu.ismn_file_name(st, st.sensors[0], dt.date(2017, 8, 10), dt.date(2018, 8, 9))
    assert (cosmos / name).exists()
    real_csv = (cosmos / "COSMOS_COSMOS_ARM-1_static_variables.csv").read_bytes()
    ours = synth_insitu.static_variables_csv(st).encode()
    assert ours.split(b"\r\n")[0] == real_csv.split(b"\r\n")[0]
    real_rows = {r.split(b";")[0] for r in real_csv.split(b"\r\n") if r}
    assert {r.split(b";")[0] for r in ours.split(b"\r\n") if r} <= real_rows


def test_ismn_files_contain_every_qc_case(world: WorldManifest) -> None:
    files = _stm_files(world.root)
    flags: set[str] = set()
    missing = 0
    deep = 0
    value_re = re.compile(rb"^\d{4}/\d\d/\d\d \d\d:\d\d +(-?\d+\.\d{4}) (\S+) M$")
    for p in files:
        raw = p.read_bytes()
        assert raw.count(b"\n\r") == 1  # header line ends LF, values CRLF: the ARM-1 mix
        lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"").split(b"\n")
        head = lines[0].split()
        if float(head[-2]) > 0.05:
            deep += 1
        for line in lines[1:]:
            if not line:
                continue
            m = value_re.match(line)
            assert m, line
            flags.add(m.group(2).decode())
            missing += m.group(1) == b"-9999.0000"
    assert {"G", "D03", "D03,D05", "D05", "C03", "M"} <= flags
    assert missing > 0 and deep > 0
    nets = {p.parts[-3] for p in files}
    assert {"FortCobb", "LittleWashita"} <= nets and len(nets) >= 4


def test_ameriflux_zips_follow_the_real_layout(world: WorldManifest, realdata: Path) -> None:
    import openpyxl

    real_zip = realdata / "chuhousen_amerifluxr/inst/extdata/AMF_US-CRT_BASE-BADM_2-5.zip"
    with zipfile.ZipFile(real_zip) as z:
        real_bif = next(n for n in z.namelist() if n.endswith(".xlsx"))
        real_wb = openpyxl.load_workbook(io.BytesIO(z.read(real_bif)))
    real_head = next(real_wb.active.iter_rows(values_only=True))
    igbp, cold, high = set(), 0, 0
    for path in world.files["ameriflux"]:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            csv_name = next(n for n in names if "_BASE_HH_" in n)
            bif_name = next(n for n in names if "_BIF_" in n)
            text = z.read(csv_name).decode()
            wb = openpyxl.load_workbook(io.BytesIO(z.read(bif_name)))
        assert wb.sheetnames == real_wb.sheetnames
        rows = list(wb.active.iter_rows(values_only=True))
        assert rows[0] == real_head
        bif = {r[3]: r[4] for r in rows[1:]}
        assert {"LOCATION_LAT", "LOCATION_LONG", "UTC_OFFSET", "IGBP"} <= set(bif)
        igbp.add(bif["IGBP"])
        lines = text.split("\n")
        assert lines[0].startswith("# Site: US-") and lines[1].startswith("# Version: ")
        header = lines[2].split(",")
        assert header[:2] == ["TIMESTAMP_START", "TIMESTAMP_END"]
        assert lines[3].startswith("202003312330,") or lines[3].startswith("202004010000,")
        table = np.array([[float(x) for x in ln.split(",")] for ln in lines[3:] if ln])
        ts = table[:, header.index("TS_1_1_1")]
        swc_col = "SWC" if "SWC" in header else "SWC_1_1_1"
        swc = table[:, header.index(swc_col)]
        assert (swc == -9999).any()
        cold += int(((ts < 3.0) & (ts > -9999)).sum())
        high += int((swc > 70).sum())
    assert "WET" in igbp and cold > 0 and high > 0


# -- the project's readers -------------------------------------------------------------


def _compare_with_files(
    r: object, paths: list[Path], convert: object, *, exact: bool = False
) -> int:
    """Compare a reader's NativeRaster with the files it came from; returns cells compared."""
    from pipeline.sources import NativeRaster

    assert isinstance(r, NativeRaster)
    n = 0
    gt = r.grid.transform
    for path in paths:
        with rasterio.open(path) as src:
            t = src.transform
            c0 = round((gt[2] - t.c) / t.a)
            r0 = round((gt[5] - t.f) / t.e)
            rr0, cc0 = max(0, r0), max(0, c0)
            rr1 = min(src.height, r0 + r.grid.height)
            cc1 = min(src.width, c0 + r.grid.width)
            if rr1 <= rr0 or cc1 <= cc0:
                continue
            raw = src.read(1, window=((rr0, rr1), (cc0, cc1)))
        got = r.data[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
        ok = np.isfinite(got)
        want = convert(raw)  # type: ignore[operator]
        if exact:
            np.testing.assert_array_equal(got[ok], want[ok])
        else:
            np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=1e-4)
        n += int(ok.sum())
    return n


def test_source_readers_return_the_written_values(world: WorldManifest) -> None:
    from pipeline.sources import Catalog

    cat = Catalog.from_root(world.root, family=TERRA)
    src = cat.sources("training")
    maps = cat.sources("maps")
    day = SPEC.start
    region = SPEC.region
    counts = {}

    def files(product: str, layer: str = "") -> list[Path]:
        return [p for p in world.files[product] if (not layer or p.name.endswith(layer))]

    r = src["precip"].native(day, region)
    counts["precip"] = _compare_with_files(
        r, [products.chirps_path(world.root, day)], lambda a: a, exact=True
    )
    r = src["elevation"].native(None, region)
    counts["elevation"] = _compare_with_files(r, files("merit"), lambda a: a, exact=True)
    r = src["sand"].native(None, region)
    counts["sand"] = _compare_with_files(
        r, [products.soilgrids_path(world.root, "sand")], lambda a: a / 10.0
    )
    r = src["ph"].native(None, region)
    counts["ph"] = _compare_with_files(
        r, [products.soilgrids_path(world.root, "phh2o")], lambda a: a / 10.0
    )
    r = src["koppen"].native(None, region)
    counts["koppen"] = _compare_with_files(r, files("koppen"), lambda a: a, exact=True)
    r = src["lst"].native(day, region)  # MOD11A2 8-day, kelvin * 0.02 -> degC
    dated = [p for p in files("MOD11A2", layer="_LST_Day_1km.tif") if "2020.03.29" in str(p)]
    counts["lst"] = _compare_with_files(r, dated, lambda a: a * 0.02 - 273.15)
    r = maps["lst"].native(day, region)  # MOD21A1D daily
    dated = [p for p in files("MOD21A1D", layer="_LST_1KM.tif") if "2020.04.01" in str(p)]
    counts["lst_daily"] = _compare_with_files(r, dated, lambda a: a * 0.02 - 273.15)
    r = src["ndvi"].native(day, region)
    dated = [p for p in files("MOD13A1", layer="_NDVI.tif") if "2020.03.21" in str(p)]
    counts["ndvi"] = _compare_with_files(r, dated, lambda a: a * 1e-4)
    r = src["et"].native(day, region)  # mm per 8-day composite -> mm/day
    dated = [p for p in files("MOD16A2", layer="_ET_500m.tif") if "2020.03.29" in str(p)]
    counts["et"] = _compare_with_files(r, dated, lambda a: a * 0.1 / 8.0)
    r = src["landcover"].native(day, region)
    counts["landcover"] = _compare_with_files(r, files("MCD12Q1"), lambda a: a, exact=True)
    r = src["texture"].native(None, region)
    assert set(np.unique(r.data[np.isfinite(r.data)]).tolist()) <= set(range(1, 13))
    assert all(n > 0 for n in counts.values()), counts


def test_smap_reader_combines_am_pm_as_written(world: WorldManifest) -> None:
    from pipeline.sources import Catalog, MissingInputError

    src = Catalog.from_root(world.root, family=TERRA).sources("training")["smap"]
    compared = 0
    for day in SPEC.days:
        try:
            r = src.native(day, SPEC.region)
        except MissingInputError:
            continue  # a swath gap over the whole region: SMAP-missing that day
        assert r.provenance.files[0].endswith(f"_{SPEC.smap_crid}_001.h5")  # newest release
        r0, c0 = r.offset
        h, w = r.grid.shape
        with h5py.File(smap.granule_path(world.root, day, SPEC.smap_crid), "r") as f:
            am = f["Soil_Moisture_Retrieval_Data_AM/soil_moisture"][r0 : r0 + h, c0 : c0 + w]
            qa = f["Soil_Moisture_Retrieval_Data_AM/retrieval_qual_flag"][r0 : r0 + h, c0 : c0 + w]
            pm = f["Soil_Moisture_Retrieval_Data_PM/soil_moisture_pm"][r0 : r0 + h, c0 : c0 + w]
            qp = f["Soil_Moisture_Retrieval_Data_PM/retrieval_qual_flag_pm"][
                r0 : r0 + h, c0 : c0 + w
            ]
        a = np.where((am > 0) & (qa & 1 == 0), am, np.nan)
        p = np.where((pm > 0) & (qp & 1 == 0), pm, np.nan)
        want = np.where(np.isnan(a), p, np.where(np.isnan(p), a, 0.5 * (a + p)))
        np.testing.assert_allclose(r.data, want, rtol=1e-6, equal_nan=True)
        compared += int(np.isfinite(want).sum())
    assert compared > 0


def test_insitu_reader_applies_every_qc_rule_to_the_stations(world: WorldManifest) -> None:
    import xarray as xr

    from pipeline.config import InsituConfig
    from pipeline.insitu import build_insitu

    meta = json.loads((world.root / "world.json").read_text())
    res = build_insitu(world.root / "ISMN", world.root / "AmeriFlux", InsituConfig())
    rep = res.report
    assert not rep.skipped
    assert rep.step("ISMN", "ISMN flag is exactly G").dropped > 0
    assert rep.step("ISMN", "sensor depth_to <= 0.05 m").dropped > 0
    assert rep.step("AmeriFlux", "SWC value present (not -9999)").dropped > 0
    assert rep.step("AmeriFlux", "not a wetland site").dropped > 0
    assert rep.step("AmeriFlux", "temperature >= 3 degC (TS_* or MODIS LST)").dropped > 0
    assert rep.step("AmeriFlux", "0 <= sm <= 0.7 m3 m-3").dropped > 0
    daily = res.daily
    assert daily["site_id"].nunique() >= 10
    # the stations' daily means follow the truth at their pixel (pooled over sites and days)
    ds = xr.open_zarr(world.root / "truth" / "soil_moisture_90m.zarr")
    truth = ds["soil_moisture"].values
    region = SPEC.region_grid()
    row0 = round((90.0 - region.bounds[3]) * 1200)
    col0 = round((region.bounds[0] + 180.0) * 1200)
    where = {
        (f"ISMN:{s['network']}:{s['station']}" if s["kind"] == "ismn" else f"AMF:{s['station']}"):
        (s["pixel_row"] - row0, s["pixel_col"] - col0)
        for s in meta["stations"]
    }  # fmt: skip
    obs, tru = [], []
    for row in daily.itertuples():
        r, c = where[row.site_id]
        k = (row.date.date() - SPEC.start).days
        if 0 <= k < len(SPEC.days):
            obs.append(row.sm)
            tru.append(truth[k, r, c])
    assert len(obs) > 40
    assert np.corrcoef(obs, tru)[0, 1] > 0.7


def test_fine_covariates_explain_part_of_the_subcell_variability(
    days_fields: dict[dt.date, dict[str, np.ndarray]],
) -> None:
    # Within each 9 km cell, regress the 90 m truth anomaly on the 90 m covariate anomalies
    # (elevation, sand, clay, pH, NDVI, LST): they must explain part (R2 > 0.2), never all
    # (R2 < 0.9; the world adds static and daily noise no covariate sees).
    domain = SPEC.domain_grid()
    st = static_tile(SPEC, domain)
    idx = smap.smap_cells(domain, st["landcover"]).index
    assert idx.separable
    rows = np.repeat(np.arange(idx.height), np.diff(np.r_[idx.row_starts, domain.shape[0]]))
    cols = np.repeat(np.arange(idx.width), np.diff(np.r_[idx.col_starts, domain.shape[1]]))

    def anomaly(v: np.ndarray) -> np.ndarray:
        return v - idx.mean(v)[rows][:, cols]

    f = days_fields[SPEC.end]
    y = anomaly(f["soil_moisture"])
    xs = [anomaly(v) for v in (st["elevation"], st["sand"], st["clay"], st["ph"])]
    xs += [anomaly(f["ndvi"]), anomaly(f["lst"])]
    ok = np.isfinite(y)
    a = np.stack([x[ok] for x in xs] + [np.ones(int(ok.sum()))], axis=1).astype(np.float64)
    beta, *_ = np.linalg.lstsq(a, y[ok].astype(np.float64), rcond=None)
    r2 = 1.0 - np.var(y[ok] - a @ beta) / np.var(y[ok])
    assert 0.2 < r2 < 0.9, r2


def test_insitu_file_readers_parse_every_line_as_written(world: WorldManifest) -> None:
    from pipeline.insitu import read_ameriflux, read_ismn_file

    meta = json.loads((world.root / "world.json").read_text())
    stations = {(s["network"], s["station"]): s for s in meta["stations"]}
    for p in _stm_files(world.root)[:6]:
        series = read_ismn_file(p)
        st = stations[(series.network, series.station)]
        assert (series.lat, series.lon) == (st["lat"], st["lon"])
        lines = p.read_bytes().replace(b"\r", b"").split(b"\n")[1:]
        rows = [ln.split() for ln in lines if ln]
        assert len(series.data) == len(rows) == 24 * len(SPEC.days)
        np.testing.assert_allclose(series.data["value"], [float(r[2]) for r in rows])
        assert series.data["ismn_flag"].tolist() == [r[3].decode() for r in rows]
        assert str(series.data["time"].iloc[0]) == "2020-04-01 00:00:00"
    for path in world.files["ameriflux"]:
        site = read_ameriflux(path)
        st = stations[("AmeriFlux", site.site_id)]
        assert (site.lat, site.lon, site.utc_offset) == (st["lat"], st["lon"], -6)
        assert site.igbp == st["igbp"]
        with zipfile.ZipFile(path) as z:
            text = z.read(next(n for n in z.namelist() if n.endswith(".csv"))).decode()
        lines = text.split("\n")
        header = lines[2].split(",")
        col = site.swc_columns[0].name
        raw = np.array([float(ln.split(",")[header.index(col)]) for ln in lines[3:] if ln])
        got = site.swc[col].to_numpy()
        ok = raw != -9999
        np.testing.assert_allclose(got[ok], raw[ok] / 100.0)
        assert np.all(np.isnan(got[~ok]))
        # local standard time UTC-6: the first half hour's middle is 06:15 UTC
        assert str(site.times[0]) == "2020-04-01 06:15:00"
