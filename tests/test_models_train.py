"""Training: determinism, site-disjoint early stopping, row selection, table input, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _models_shared import small_table, trained

from models import table as tbl
from models.errors import ModelError
from models.runtime import Ensemble
from models.synthetic import synthetic_table

pytest.importorskip("keras")


def _quiet(_msg: str) -> None:
    return None


def test_inner_split_is_site_disjoint_seeded_and_order_free() -> None:
    df = small_table()
    sites = df["site_id"].to_numpy()
    mask, chosen = tbl.inner_split(sites, seed=5)
    assert set(df.loc[mask, "site_id"]) == set(chosen)
    assert not set(df.loc[~mask, "site_id"]) & set(chosen)
    assert len(chosen) == round(0.2 * df["site_id"].nunique())
    _, again = tbl.inner_split(sites[::-1], seed=5)
    assert again == chosen
    _, other = tbl.inner_split(sites, seed=6)
    assert other != chosen
    with pytest.raises(tbl.TableSchemaError, match="at least 2"):
        tbl.inner_split(np.array(["a", "a"]), seed=0)


def test_early_stopping_split_in_manifest_has_no_site_on_both_sides() -> None:
    _, manifest = trained("dense")
    inner = manifest.inner_split
    assert inner["used"] is True
    train_sites = set(small_table().query("split == 'train'")["site_id"])
    inner_sites = set(inner["inner_sites"])
    assert inner_sites < train_sites
    assert inner["n_fit_sites"] + inner["n_inner_sites"] == len(train_sites)
    fit_rows = small_table().query("split == 'train' and site_id not in @inner_sites")
    assert all(m.n_train_rows == len(fit_rows) for m in manifest.members)
    assert all(m.epochs_run is not None and 1 <= m.epochs_run <= 6 for m in manifest.members)


def test_same_seed_gives_the_same_predictions(tmp_path: Path) -> None:
    from models.train import train_ensemble

    df = synthetic_table(n_sites=12, n_days=30, seed=4)
    kw = {"seed": 9, "epochs": 3, "batch_size": 128, "weight_variables": ("clay",), "log": _quiet}
    train_ensemble("dense", df, tmp_path / "a", **kw)  # type: ignore[arg-type]
    train_ensemble("dense", df, tmp_path / "b", **kw)  # type: ignore[arg-type]
    train_ensemble("dense", df, tmp_path / "c", **(kw | {"seed": 10}))  # type: ignore[arg-type]
    x = tbl.features(df)
    a = Ensemble.load(tmp_path / "a").predict(x)
    b = Ensemble.load(tmp_path / "b").predict(x)
    c = Ensemble.load(tmp_path / "c").predict(x)
    assert np.abs(a.mean - b.mean).max() <= 1e-6
    assert np.abs(a.sd - b.sd).max() <= 1e-6
    assert np.abs(a.mean - c.mean).max() > 1e-4  # another seed is another model


def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path: Path) -> None:
    from models.train import train_ensemble

    df = synthetic_table(n_sites=12, n_days=30, seed=4)
    # a learning rate far too large makes the inner loss stop improving quickly
    manifest = train_ensemble(
        "dense",
        df,
        tmp_path,
        seed=1,
        epochs=60,
        batch_size=64,
        patience=2,
        learning_rate=0.5,
        weight_variables=("none",),
        log=_quiet,
    )
    member = manifest.members[0]
    assert member.epochs_run is not None and member.epochs_run < 60


def test_rows_callable_trains_on_the_selected_rows_and_scores_the_rest(tmp_path: Path) -> None:
    from models.train import train_ensemble

    df = small_table()

    def not_fold_0(t: pd.DataFrame) -> np.ndarray:
        return (t["fold"] != 0).to_numpy()

    lines: list[str] = []
    manifest = train_ensemble(
        "rf", df, tmp_path, rows=not_fold_0, n_estimators=5, log=lines.append, seed=2
    )
    assert sum(m.n_train_rows for m in manifest.members) == int((df["fold"] != 0).sum())
    assert manifest.rows == "not_fold_0"
    assert manifest.fused is None  # forests run member by member (faster; see the benchmark)
    assert Ensemble.load(tmp_path).mode == "members"
    assert manifest.validation_metrics["n"] == float((df["fold"] == 0).sum())
    assert any("validation" in line and "RMSE" in line for line in lines)
    assert any(line.startswith("  forest 1/") and line.endswith(" s") for line in lines)


def test_table_from_parquet_and_schema_errors(tmp_path: Path) -> None:
    from models.train import TrainError, train_ensemble

    df = synthetic_table(n_sites=10, n_days=20, seed=1)
    path = tmp_path / "table.parquet"
    df.to_parquet(path)
    manifest = train_ensemble("rf", path, tmp_path / "m", n_estimators=3, log=_quiet)
    assert manifest.table_hash == tbl.table_hash(tbl.read_table(path))
    with pytest.raises(tbl.TableSchemaError, match=r"missing column\(s\) \['w_ph'\]"):
        train_ensemble("rf", df.drop(columns=["w_ph"]), tmp_path / "x", log=_quiet)
    with pytest.raises(tbl.TableSchemaError, match="not found"):
        tbl.read_table(tmp_path / "nope.parquet")
    with pytest.raises(TrainError, match="unknown architecture 'cnn'"):
        train_ensemble("cnn", df, tmp_path / "y", log=_quiet)
    with pytest.raises(ModelError, match="weight variables"):
        train_ensemble("dense", df, tmp_path / "z", weight_variables=("silt",), log=_quiet)


def test_incomplete_rows_are_dropped_before_training(tmp_path: Path) -> None:
    from models.train import train_ensemble

    df = synthetic_table(n_sites=10, n_days=20, seed=1)
    df.loc[df.index[:15], "ndvi"] = np.nan
    manifest = train_ensemble("rf", df, tmp_path, n_estimators=3, rows="all", log=_quiet)
    assert sum(m.n_train_rows for m in manifest.members) == len(df) - 15
    assert manifest.validation_metrics == {}


def test_cli_train_writes_a_loadable_ensemble(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from pipeline.cli import main

    path = tmp_path / "table.parquet"
    synthetic_table(n_sites=10, n_days=20, seed=2).to_parquet(path)
    out = tmp_path / "rf"
    rc = main(["train", "--arch", "rf", "--table", str(path), "--out", str(out), "--trees", "4"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "forest 1/" in printed and "validation" in printed
    assert Ensemble.load(out).manifest.arch == "rf"
    rc = main(["train", "--arch", "mlp", "--table", str(path), "--out", str(out)])
    assert rc == 1
    assert "--arch 'mlp': choose one of dense, prob, wdl, rf" in capsys.readouterr().err


def _with_extended(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """``df`` plus the extended set's columns; ``api`` carries signal the target uses."""
    from models.features import FEATURE_NAMES, feature_names

    rng = np.random.default_rng(seed)
    out = df.copy()
    for name in feature_names("extended"):
        if name not in FEATURE_NAMES:
            out[name] = rng.uniform(0.0, 1.0, len(out)).astype(np.float32)
    out["sm"] = out["sm"] + 0.05 * out["api"]
    return out


@pytest.mark.parametrize("arch", ["dense", "rf"])
def test_the_extended_set_is_trained_recorded_and_checked(tmp_path: Path, arch: str) -> None:
    from models.features import FEATURE_NAMES, feature_names
    from models.manifest import Manifest
    from models.train import TrainError, train_ensemble

    df = _with_extended(synthetic_table(n_sites=12, n_days=30, seed=4))
    kw = {"seed": 1, "epochs": 2, "weight_variables": ("none",), "log": _quiet}
    kw |= {"n_estimators": 5} if arch == "rf" else {}
    man = train_ensemble(arch, df, tmp_path / "e", feature_set="extended", **kw)  # type: ignore[arg-type]
    ext = feature_names("extended")
    assert man.feature_set == "extended" and tuple(man.feature_names) == ext
    assert man.feature_units[-1] == "1" and len(man.feature_units) == len(ext)
    ens = Ensemble.load(tmp_path / "e")
    assert ens.feature_names == ext
    pred = ens.predict(tbl.features(df, ext))
    assert np.isfinite(pred.mean).all() and pred.mean.shape == (len(df),)
    with pytest.raises(ModelError, match=f"x must be \\(n, {len(ext)}\\)"):
        ens.predict(tbl.features(df))
    # The paper set's manifest keeps its old form (no feature_set key: same hash as before).
    paper = train_ensemble(arch, df, tmp_path / "p", **kw)  # type: ignore[arg-type]
    assert "feature_set" not in paper.dump() and tuple(paper.feature_names) == FEATURE_NAMES
    assert Manifest.read(tmp_path / "e").dump()["feature_set"] == "extended"
    with pytest.raises(TrainError, match="unknown feature set 'huge'"):
        train_ensemble(arch, df, tmp_path / "x", feature_set="huge", **kw)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="api"):
        train_ensemble(arch, synthetic_table(n_sites=12, n_days=30), tmp_path / "y",
                       feature_set="extended", **kw)  # type: ignore[arg-type]  # fmt: skip
