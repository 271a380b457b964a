"""Product families end to end: table -> train -> run -> evaluate on a MODIS and a VIIRS world.

Two tiny synthetic worlds of the same seed (0.2 x 0.2 degree, 16 days, 24 stations), one
written as MODIS Terra GeoTIFF tiles, one as VIIRS (Suomi NPP) HDF-EOS5 tiles. Both
simulate the same fields, so the training tables must agree value for value (units are
the variable's whatever the family); each goes through the whole chain with a small
random forest, and the run refuses a model of the other family unless allowed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REGION = (-97.7, 35.3, -97.5, 35.5)
START, END = dt.date(2020, 6, 1), dt.date(2020, 6, 16)
FAMILIES = ("modis-terra", "viirs-snpp")


def _settings(root: Path, family: str, **sources: Any) -> Any:
    from pipeline.config import Settings

    return Settings(
        sources={"root": str(root / "world"), "family": family, **sources},
        grid={"name": "conus-90m", "region": list(REGION), "tile_size": 128},
        output={"store": str(root / "cube"), "chunk_size": 64, "first_year": 2020},
        models={"dir": str(root / "models"), "arch": "rf"},
        table={"path": str(root / "table.parquet")},
    )


def _chain(root: Path, family: str) -> dict[str, Any]:
    """World -> in-situ -> table -> RF ensemble -> four mapped days -> evaluation."""
    from models.train import train_ensemble
    from pipeline.evaluate.evaluation import run_evaluation
    from pipeline.insitu import build_insitu
    from pipeline.run import backfill, build_plan
    from pipeline.synth import WorldSpec, write_world
    from pipeline.table import write_table
    from pipeline.table.build import build_from_settings, table_metadata_for

    spec = WorldSpec(
        region=REGION,
        start=START,
        end=END,
        seed=3,
        n_stations=24,
        n_ameriflux=2,
        spinup_days=5,
        family=family,
    )
    manifest = write_world(spec, root / "world")
    settings = _settings(root, family)
    info = json.loads((root / "world" / "world.json").read_text(encoding="utf-8"))
    cfg = settings.insitu.model_copy(update={"wetland_sites": info["ismn_wetland_sites"]})
    build_insitu(root / "world" / "ISMN", root / "world" / "AmeriFlux", cfg).write(root / "insitu")
    built = build_from_settings(settings, insitu=root / "insitu.parquet", mode="training")
    table_path = write_table(
        built.table, root / "table.parquet", table_metadata_for(built, settings.table)
    )
    model = train_ensemble(
        "rf", table_path, root / "models" / "rf", seed=0, n_estimators=3, threads=1, log=print
    )
    plan = build_plan(settings, mode="maps")
    days = backfill(
        settings, END - dt.timedelta(days=3), END, client=None, plan=plan, today=dt.date(2020, 8, 1)
    )
    evaluation = run_evaluation(
        table_path,
        {"RF": root / "models" / "rf"},
        split="validation",
        out_dir=root / "evaluation",
        table_cfg=settings.table,
        truth_world=root / "world",
        cube=plan.cube.url,
        make_figures=False,
    )
    return {
        "files": manifest.files,
        "table": built,
        "table_path": table_path,
        "manifest": model,
        "days": days,
        "evaluation": evaluation,
        "settings": settings,
    }


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {fam: _chain(tmp_path_factory.mktemp(fam), fam) for fam in FAMILIES}


def test_each_family_is_written_in_its_native_format(chains: dict[str, Any]) -> None:
    import h5py

    modis, viirs = chains["modis-terra"]["files"], chains["viirs-snpp"]["files"]
    assert {"MOD13A1", "MOD13Q1", "MOD11A2", "MOD21A1D", "MOD16A2"} <= set(modis)
    assert not any(k.startswith("VNP") for k in modis)
    assert {"VNP13A1", "VNP21A2", "VNP21A1D", "VNP16A2"} <= set(viirs)
    assert not any(k.startswith("MOD") for k in viirs)
    assert all(p.suffix == ".tif" for p in modis["MOD21A1D"])
    path = viirs["VNP21A1D"][0]
    assert path.suffix == ".h5" and path.read_bytes()[:4] == b"\x89HDF"
    with h5py.File(path, "r") as f:
        text = f["HDFEOS INFORMATION/StructMetadata.0"][()].decode()
        lst = f["HDFEOS/GRIDS/VIIRS_Grid_Daily_1km_LST21/Data Fields/LST_1KM"]
        assert "_Fillvalue" in lst.attrs  # the real granules' spelling
        assert f.attrs["ShortName"] == b"VNP21A1D"
    assert "Projection=HE5_GCTP_SNSOID" in text and "UpperLeftPointMtrs=(" in text


def test_tables_of_both_families_hold_the_same_values(chains: dict[str, Any]) -> None:
    from models.features import FEATURE_NAMES

    a = chains["modis-terra"]["table"].table
    b = chains["viirs-snpp"]["table"].table
    assert len(a) == len(b) > 50
    for col in (*FEATURE_NAMES, "sm", "lst_composite", "et_composite", "ndvi_composite"):
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)


@pytest.mark.parametrize(
    ("family", "lst", "ndvi", "et"),
    [
        ("modis-terra", "MOD11A2", "MOD13A1", "MOD16A2"),
        ("viirs-snpp", "VNP21A2", "VNP13A1", "VNP16A2"),
    ],
)
def test_table_and_manifest_record_family_and_products(
    chains: dict[str, Any], family: str, lst: str, ndvi: str, et: str
) -> None:
    from pipeline.table.schema import table_metadata

    c = chains[family]
    meta = table_metadata(c["table_path"])
    assert meta["family"] == family
    assert (meta["products"]["lst"], meta["products"]["ndvi"], meta["products"]["et"]) == (
        lst,
        ndvi,
        et,
    )
    assert meta["products"]["landcover"] == "MCD12Q1"
    # MCD12Q1 of the latest year on or before the day: the world's 2020 file served every row.
    years = meta["build"]["landcover_years"]
    assert list(years) == ["2020"] and years["2020"] >= len(c["table"].table)
    m = c["manifest"]
    assert m.family == family
    assert m.products == meta["products"]
    on_disk = json.loads((Path(c["settings"].models.dir) / "rf" / "manifest.json").read_text())
    assert on_disk["family"] == family


@pytest.mark.parametrize("family", FAMILIES)
def test_run_and_evaluate_go_through(chains: dict[str, Any], family: str) -> None:
    c = chains[family]
    made = [r for r in c["days"] if not r.skipped]
    assert made, [r.reason for r in c["days"]]
    assert not [r for r in c["days"] if r.reason.startswith("failed")]
    ev = c["evaluation"]
    metrics = json.loads(
        (Path(c["settings"].table.path).parent / "evaluation" / "metrics.json").read_text()
    )
    t5 = ev.tables["table5"].set_index("model")
    assert t5.loc["RF", "n_days"] > 0 and np.isfinite(t5.loc["RF", "ubrmse"])
    assert metrics["meta"]["models"] == {"RF": str(Path(c["settings"].models.dir) / "rf")}
    # The maps of the mapped days were scored against the world's truth.
    assert np.isfinite(metrics["meta"]["map_within_1sd"])


def test_same_table_same_model_same_station_scores(chains: dict[str, Any]) -> None:
    a = chains["modis-terra"]["evaluation"].tables["table5"]
    b = chains["viirs-snpp"]["evaluation"].tables["table5"]
    cols = ["model", "n_days", "r", "ubrmse", "bias"]
    assert a[cols].to_dict("records") == b[cols].to_dict("records")


def test_run_refuses_a_model_of_another_family(chains: dict[str, Any]) -> None:
    from pipeline.errors import ConfigError
    from pipeline.run import build_plan

    root = Path(chains["modis-terra"]["settings"].table.path).parent
    wrong = _settings(root, "viirs-snpp")
    with pytest.raises(ConfigError) as err:
        build_plan(wrong, mode="maps")
    msg = str(err.value)
    assert "\n" not in msg
    assert "trained on modis-terra inputs" in msg and "family is viirs-snpp" in msg
    assert "MOD11A2" in msg and "allow_family_mismatch" in msg
    allowed = _settings(root, "viirs-snpp", allow_family_mismatch=True)
    plan = build_plan(allowed, mode="maps")
    assert plan.cube.url == build_plan(chains["modis-terra"]["settings"], mode="maps").cube.url


def test_land_cover_is_the_latest_year_on_or_before_the_day(chains: dict[str, Any]) -> None:
    from pipeline.sources import Catalog

    settings = chains["viirs-snpp"]["settings"]
    cat = Catalog.from_settings(settings.sources)
    assert cat.family == "viirs-snpp"
    lc = cat.sources("maps")["landcover"]
    later = lc.available(dt.date(2022, 3, 1))  # the world has MCD12Q1 of 2020 only
    assert later is not None and later.product == "MCD12Q1"
    assert later.composite_start == dt.date(2020, 1, 1) and later.days_stale > 0
    assert lc.available(dt.date(2019, 12, 31)) is None  # never a later year
    rows = {r.variable: r for r in cat.check(dt.date(2022, 3, 1), "maps")}
    assert rows["landcover"].status == "padded" and rows["landcover"].age_days == 790
    assert rows["lst"].product == "VNP21A1D" and rows["ndvi"].product == "VNP13A1"
