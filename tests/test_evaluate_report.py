"""The evaluation end to end on a generated table and a known linear ensemble: tables,
figures, the self-contained HTML report, metrics.json, CV on a Dask client, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.evaluate import (
    SMAP,
    EmptyGroupError,
    FeatureOrderError,
    headline_table,
    read_metrics,
    run_evaluation,
    score,
)
from pipeline.evaluate.analysis import head_to_head, site_pca
from pipeline.evaluate.evaluation import FoldRows, Predictor, predict_rows
from pipeline.evaluate.metrics import site_scores
from pipeline.evaluate.report import TABLE5
from pipeline.evaluate.testing import LinearEnsemble, station_table

FAKE = LinearEnsemble.skilful(3, seed=1)


def _loader(_: Path) -> Predictor:
    return FAKE


def _trainer(
    arch: str, table: pd.DataFrame, fold: int, out_dir: Path, seed: int, epochs: int
) -> Path:
    """Stands in for models.train: records what a fold's selector would train on."""
    rows = table.loc[FoldRows(fold)(table)]
    (out_dir / "trained.json").write_text(
        json.dumps({"arch": arch, "sites": sorted(rows["site_id"].unique()), "seed": seed})
    )
    return out_dir


@pytest.fixture(scope="module")
def validation_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("eval")
    table = station_table(seed=3)
    results = run_evaluation(
        table, {"dense": out / "unused"}, split="validation", out_dir=out, loader=_loader
    )
    return out, results


def test_validation_tables_match_direct_computation(validation_run: tuple[Path, object]) -> None:
    _, results = validation_run
    t5 = results.tables[TABLE5].set_index("model")  # type: ignore[attr-defined]
    assert list(t5.index) == ["dense", SMAP]
    table = station_table(seed=3)
    val = table[table["split"] == "validation"]
    pred = predict_rows(FAKE, val, "dense")["pred__dense"]
    # The ensemble is the member average of the linear members.
    x = val[list(FAKE.feature_names)].to_numpy(np.float64)
    expect = (FAKE.coefs @ x.T + FAKE.intercepts[:, None]).mean(axis=0)
    np.testing.assert_allclose(pred.to_numpy(), expect, rtol=1e-5, atol=1e-6)
    s = score(val["sm"], pred)
    assert t5.loc["dense", "rmse"] == pytest.approx(s.rmse, rel=1e-6)
    assert t5.loc[SMAP, "r"] == pytest.approx(score(val["sm"], val["smap"]).r)
    assert t5.loc["dense", "n_sites"] == 6 and t5.loc["dense", "n_days"] == 6 * 60
    # The linear members know the site offset, SMAP does not: the model wins here.
    assert t5.loc["dense", "ubrmse"] < t5.loc[SMAP, "ubrmse"]


def test_every_table_and_figure_is_produced(validation_run: tuple[Path, object]) -> None:
    _, results = validation_run
    tables = results.tables  # type: ignore[attr-defined]
    for name in (
        TABLE5,
        "validation_table6_dense",
        "validation_networks",
        "validation_class_texture",
        "validation_class_landcover",
        "validation_class_koppen",
        "validation_sites",
        "validation_head_to_head",
        "validation_table4",
        "validation_pca_sites",
    ):
        assert name in tables and not tables[name].empty, name
    t6 = tables["validation_table6_dense"].set_index("model")
    assert list(t6.index) == ["w_texture", "w_clay", "w_sand", "ensemble", SMAP]
    figs = results.figures  # type: ignore[attr-defined]
    for name in ("r_density", "scatter", "series", "head_to_head", "pca"):
        png = figs[f"validation_fig_{name}"]
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name


def test_html_is_self_contained_and_has_every_table(validation_run: tuple[Path, object]) -> None:
    out, results = validation_run
    html = (out / "report.html").read_text("utf-8")
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"' >]+)""", html, flags=re.I)
    assert refs, "no image found"
    assert all(r.startswith("data:image/png;base64,") for r in refs), refs[:3]
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html
    for name in results.tables:  # type: ignore[attr-defined]
        assert f'id="{name}"' in html, name
    assert html.count("<img ") == len(results.figures)  # type: ignore[attr-defined]
    assert "SMAP" in html and "Table 5" in html


def test_metrics_json_round_trips(validation_run: tuple[Path, object]) -> None:
    out, results = validation_run
    doc = json.loads((out / "metrics.json").read_text("utf-8"))
    assert doc["meta"]["split"] == "validation" and doc["meta"]["min_days"] == 10
    back = read_metrics(out / "metrics.json")
    for name, table in results.tables.items():  # type: ignore[attr-defined]
        pd.testing.assert_frame_equal(
            back[name], table.reset_index(drop=True), check_dtype=False, obj=name
        )
    preds = pd.read_parquet(out / "predictions.parquet")
    assert {"site_id", "date", "sm", "smap", "pred__dense", "sd__dense"} <= set(preds.columns)


def test_headline_table_is_plain_text_with_smap_beside(
    validation_run: tuple[Path, object],
) -> None:
    _, results = validation_run
    text = headline_table(results)  # type: ignore[arg-type]
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["model", "split", "R", "ubRMSE"]
    assert lines[2].startswith("dense") and lines[3].startswith("SMAP")
    t5 = results.tables[TABLE5].set_index("model")  # type: ignore[attr-defined]
    assert f"{t5.loc['dense', 'ubrmse']:.4f}" in lines[2]
    assert f"{int(t5.loc[SMAP, 'n_days']):d}" in lines[3]


def test_class_without_sites_in_split_says_so(tmp_path: Path) -> None:
    table = station_table(seed=4)
    # Texture 9 (sandy loam) only in training: validation has no site of it.
    table.loc[table["texture"] == 9, "split"] = "train"
    results = run_evaluation(
        table,
        {"dense": tmp_path},
        split="validation",
        out_dir=tmp_path,
        loader=_loader,
        make_figures=False,
    )
    assert not results.figures
    tex = results.tables["validation_class_texture"]
    row = tex[tex["code"] == 9]
    assert len(row) == 1 and row["model"].iloc[0] == ""
    assert "no sites of class 'sandy loam' in the validation split" in row["note"].iloc[0]
    assert any("sandy loam" in n for n in results.notes)
    assert (tex[tex["code"] == 7]["n_sites"] > 0).all()


def test_named_groups_and_empty_group(tmp_path: Path) -> None:
    table = station_table(seed=5)
    results = run_evaluation(
        table,
        {"dense": tmp_path},
        split="validation",
        out_dir=tmp_path,
        loader=_loader,
        groups=["NET0"],
        write=False,
        make_figures=False,
    )
    g = results.tables["validation_groups"]
    assert set(g["group"]) == {"NET0"} and set(g["model"]) == {"dense", SMAP}
    with pytest.raises(
        EmptyGroupError,
        match=r"station group 'Little Washita': no site in the validation split.*NET0",
    ):
        run_evaluation(
            table,
            {"dense": tmp_path},
            split="validation",
            out_dir=tmp_path,
            loader=_loader,
            groups=["Little Washita"],
            write=False,
            make_figures=False,
        )


def test_feature_order_mismatch_names_the_model_dir(tmp_path: Path) -> None:
    swapped = LinearEnsemble.skilful(2)
    names = list(swapped.feature_names)
    names[1], names[2] = names[2], names[1]
    swapped.feature_names = tuple(names)
    with pytest.raises(FeatureOrderError, match=r"odd-model.*differs from the table"):
        run_evaluation(
            station_table(n_sites=8),
            {"dense": tmp_path / "odd-model"},
            split="validation",
            out_dir=tmp_path,
            loader=lambda _: swapped,
        )


def test_head_to_head_normalisation_by_hand() -> None:
    rows = []
    # 4 sites of class 7 (3 wins), 2 of class 8 (0 wins): overall win rate 3/6.
    for i, (cls, win) in enumerate([(7, 1), (7, 1), (7, 1), (7, 0), (8, 0), (8, 0)]):
        for model, ub in (("m", 0.02 if win else 0.05), (SMAP, 0.04)):
            rows.append({"site_id": f"s{i}", "model": model, "ubrmse": ub, "texture": cls})
    h = head_to_head(pd.DataFrame(rows), "m", "texture").set_index("code")
    assert h.loc[7, "win_rate"] == pytest.approx(0.75)
    assert h.loc[7, "normalised"] == pytest.approx(0.75 / 0.5)  # = (3/3) / (4/6)
    assert h.loc[8, "normalised"] == 0.0
    assert h.loc[7, "share"] == pytest.approx(4 / 6)


def test_site_pca_separates_the_main_gradient() -> None:
    table = station_table(n_sites=30, seed=6)
    sites = site_scores(
        table, {}, attributes=("sand", "clay", "ph", "elevation", "texture", "landcover")
    )
    pca = site_pca(sites.drop_duplicates("site_id"))
    assert pca.scores.shape == (30, 2)
    assert pca.explained[0] >= pca.explained[1] > 0
    # Scores are the projection onto orthonormal loadings.
    np.testing.assert_allclose(pca.loadings @ pca.loadings.T, np.eye(2), atol=1e-10)


def test_cv_trains_each_fold_on_its_own_sites_on_a_dask_client(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    table = station_table(n_sites=20, n_days=30, seed=7, n_folds=5)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        results = run_evaluation(
            table,
            {"dense": tmp_path / "none"},
            split="cv",
            out_dir=tmp_path,
            client=client,
            trainer=_trainer,
            loader=_loader,
            seed=11,
            epochs=1,
            make_figures=False,
        )
    folds = results.tables["cv_folds"]
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]
    for k in range(5):
        trained = json.loads(
            (tmp_path / "cv-models" / "dense" / f"fold{k:02d}" / "trained.json").read_text()
        )
        held_out = set(table.loc[table["fold"] == k, "site_id"])
        assert trained["arch"] == "dense" and trained["seed"] == 11
        assert held_out.isdisjoint(trained["sites"])  # site-disjoint training
        assert len(trained["sites"]) == 16
    t5 = results.tables[TABLE5].set_index("model")
    assert (t5["split"] == "cv").all()
    dense_folds = folds[folds["model"] == "dense"]
    assert t5.loc["dense", "rmse"] == pytest.approx(dense_folds["rmse"].mean())
    assert t5.loc["dense", "n_days"] == len(table)  # every site-day scored once
    assert "cv_class_texture" in results.tables and "cv_pca_sites" in results.tables


def test_gaussian_density_matches_scipy_kde() -> None:
    from scipy.stats import gaussian_kde

    from pipeline.evaluate.figures import gaussian_density

    r = np.random.default_rng(8).uniform(-0.2, 0.95, 50)
    grid = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(gaussian_density(r, grid), gaussian_kde(r)(grid), rtol=1e-10)
