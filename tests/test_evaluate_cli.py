"""``smdown evaluate`` with a real (tiny) trained Dense ensemble and a Parquet table:
the validation report, map scoring on a synthetic world, CV through models.train, and
one-line messages for bad input."""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.cli import main
from pipeline.evaluate import read_metrics, run_evaluation
from pipeline.evaluate.testing import station_table
from pipeline.evaluate.zarrio import write_zarr_v2
from pipeline.table import write_table

pytestmark = pytest.mark.slow


@cache
def _trained(root: str) -> tuple[Path, Path]:
    """A table (24 sites x 60 days, Parquet) and a 2-member Dense ensemble trained on it."""
    from models.train import train_ensemble

    base = Path(root)
    table = station_table(n_sites=24, n_days=60, seed=21)
    table_path = write_table(table, base / "table.parquet")
    model_dir = base / "models" / "dense"
    train_ensemble(
        "dense",
        table,
        model_dir,
        seed=0,
        epochs=3,
        batch_size=256,
        patience=2,
        threads=1,
        weight_variables=("texture", "none"),
        log=lambda _m: None,
    )
    return table_path, model_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _trained(str(tmp_path_factory.mktemp("evalcli")))


def _world(tmp: Path) -> tuple[Path, Path]:
    """A tiny synthetic world (truth Zarr) and a cube that is the truth plus noise."""
    rng = np.random.default_rng(0)
    lat = 35.1 - (np.arange(60) + 0.5) / 1200
    lon = -97.1 + (np.arange(80) + 0.5) / 1200
    time = pd.date_range("2020-06-01", periods=2)
    coords = {"time": time, "lat": lat, "lon": lon}
    truth = xr.DataArray(
        rng.uniform(0.1, 0.4, (2, 60, 80)).astype(np.float32),
        dims=("time", "lat", "lon"),
        coords=coords,
    )
    (tmp / "world" / "truth").mkdir(parents=True)
    write_zarr_v2(
        truth.to_dataset(name="soil_moisture"), tmp / "world/truth/soil_moisture_90m.zarr"
    )
    cube = (truth + rng.normal(0, 0.01, truth.shape)).astype(np.float32)
    write_zarr_v2(cube.to_dataset(name="soil_moisture"), tmp / "cube.zarr")
    return tmp / "world", tmp / "cube.zarr"


def test_validation_report_from_the_command_line(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table_path, model_dir = trained
    world, cube = _world(tmp_path)
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--table", str(table_path),
            "--models", f"dense={model_dir}",
            "--out", str(out),
            "--group", "NET0",
            "--truth-world", str(world),
            "--cube", str(cube),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].split()[:2] == ["model", "split"]
    assert lines[2].startswith("dense") and lines[3].startswith("SMAP")
    assert f"report: {out / 'report.html'}" in captured.out
    assert "ideal 9 km" in captured.out  # the map-scoring table is printed too
    tables = read_metrics(out / "metrics.json")
    t5 = tables["table5"].set_index("model")
    table = pd.read_parquet(table_path)
    n_val = int((table["split"] == "validation").sum())
    assert t5.loc["dense", "n_days"] == t5.loc["SMAP", "n_days"] == n_val
    assert np.isfinite(t5.loc["dense", "rmse"]) and t5.loc["dense", "rmse"] < 0.5
    maps = tables["maps"].set_index("field")
    assert maps.loc["model", "n_pixel_days"] == 2 * 60 * 80
    assert set(tables["validation_groups"]["group"]) == {"NET0"}
    assert (out / "report.html").stat().st_size > 50_000


def test_defaults_come_from_the_configuration(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table_path, model_dir = trained
    cfg = tmp_path / "smdown.toml"
    cfg.write_text(f'[table]\npath = "{table_path}"\n[models]\ndir = "{model_dir.parent}"\n')
    out = tmp_path / "eval"
    assert main(["--config", str(cfg), "evaluate", "--out", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["meta"]["models"] == {"dense": str(model_dir)}
    assert doc["meta"]["table"] == str(table_path)
    capsys.readouterr()


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_feature_order_mismatch_is_one_line_naming_the_model(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table_path, model_dir = trained
    odd = tmp_path / "odd-dense"
    shutil.copytree(model_dir, odd)
    manifest = json.loads((odd / "manifest.json").read_text())
    names = manifest["feature_names"]
    names[0], names[1] = names[1], names[0]
    (odd / "manifest.json").write_text(json.dumps(manifest))
    code = main(
        ["evaluate", "--table", str(table_path), "--models", str(odd), "--out", str(tmp_path)]
    )
    assert code == 1
    err = _one_line_error(capsys)
    assert "odd-dense" in err and "feature" in err


def test_empty_group_bad_split_missing_table(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table_path, model_dir = trained
    base = ["evaluate", "--table", str(table_path), "--models", str(model_dir)]
    assert main([*base, "--out", str(tmp_path), "--group", "Walnut Gulch"]) == 1
    assert "station group 'Walnut Gulch'" in _one_line_error(capsys)
    assert main([*base, "--out", str(tmp_path), "--split", "test"]) == 1
    assert "--split must be one of" in _one_line_error(capsys)
    missing = tmp_path / "nope.parquet"
    assert main(["evaluate", "--table", str(missing), "--models", str(model_dir)]) == 1
    assert "nope.parquet" in _one_line_error(capsys)


def test_cv_trains_real_fold_ensembles(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """Two folds of real CV (sequential): each fold's ensemble never saw its sites."""
    table_path, model_dir = trained
    table = pd.read_parquet(table_path)
    results = run_evaluation(
        table,
        {"dense": model_dir},
        split="cv",
        out_dir=tmp_path,
        n_folds=2,
        epochs=1,
        train_options={"weight_variables": ("none",), "batch_size": 512, "patience": 1},
        make_figures=False,
    )
    folds = results.tables["cv_folds"]
    assert sorted(folds["fold"].unique()) == [0, 1]
    for k in (0, 1):
        fold_dir = tmp_path / "cv-models/dense" / f"fold{k:02d}"
        manifest = json.loads((fold_dir / "manifest.json").read_text())
        assert manifest["rows"] == f"cv_fold_{k}_train"
        assert manifest["members"][0]["n_train_rows"] < len(table)
    t5 = results.tables["table5"].set_index("model")
    held = table[table["fold"].isin([0, 1])]
    assert t5.loc["SMAP", "n_days"] == len(held)


def test_cube_argument_may_name_the_output_directory(tmp_path: Path) -> None:
    from pipeline.cli.evaluate import resolve_cube
    from pipeline.evaluate import EvaluationError

    with pytest.raises(EvaluationError, match="no Zarr cube here"):
        resolve_cube(str(tmp_path))
    ds = xr.Dataset({"soil_moisture": ("x", np.zeros(2, np.float32))})
    write_zarr_v2(ds, tmp_path / "dense-0123.zarr")
    write_zarr_v2(xr.Dataset({"landcover": ("x", np.zeros(2))}), tmp_path / "static-lc.zarr")
    assert resolve_cube(str(tmp_path)) == str(tmp_path / "dense-0123.zarr")
    assert resolve_cube(str(tmp_path / "dense-0123.zarr")) == str(tmp_path / "dense-0123.zarr")
    write_zarr_v2(ds, tmp_path / "prob-4567.zarr")
    with pytest.raises(EvaluationError, match="several cubes"):
        resolve_cube(str(tmp_path))
    assert resolve_cube("s3://bucket/cube.zarr") == "s3://bucket/cube.zarr"


def test_cv_scores_both_feature_sets_side_by_side(tmp_path: Path) -> None:
    """``arch`` and ``arch+extended`` CV models on one table of the extended set."""
    from models.features import FEATURE_NAMES, feature_names
    from pipeline.cli.evaluate import with_feature_sets
    from pipeline.evaluate import EvaluationError

    table = station_table(n_sites=12, n_days=20, seed=3)
    rng = np.random.default_rng(0)
    for name in feature_names("extended"):
        if name not in FEATURE_NAMES:
            table[name] = rng.uniform(0, 1, len(table)).astype(np.float32)
    dirs = with_feature_sets({"rf": tmp_path / "rf"}, "paper,extended")
    assert list(dirs) == ["rf", "rf+extended"]
    with pytest.raises(EvaluationError, match="--feature-sets 'big'"):
        with_feature_sets({"rf": tmp_path / "rf"}, "big")
    results = run_evaluation(
        table,
        dirs,
        split="cv",
        out_dir=tmp_path / "out",
        n_folds=1,
        train_options={"n_estimators": 3},
        make_figures=False,
    )
    t5 = results.tables["table5"].set_index("model")
    assert {"rf", "rf+extended", "SMAP"} <= set(t5.index)
    ext = json.loads((tmp_path / "out/cv-models/rf+extended/fold00/manifest.json").read_text())
    paper = json.loads((tmp_path / "out/cv-models/rf/fold00/manifest.json").read_text())
    assert ext["feature_set"] == "extended" and len(ext["feature_names"]) == 17
    assert "feature_set" not in paper and paper["feature_names"] == list(FEATURE_NAMES)
    # A table without the extended columns cannot train an extended model: names them.
    from models.errors import ModelError

    with pytest.raises(ModelError, match="api"):
        run_evaluation(
            table.drop(columns=["api"]),
            {"rf+extended": tmp_path / "none"},
            split="cv",
            out_dir=tmp_path / "out2",
            n_folds=1,
            train_options={"n_estimators": 3},
            make_figures=False,
        )
