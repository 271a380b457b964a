"""The notebooks in notebooks/ run top to bottom on demo-shaped outputs, so they never go stale.

The outputs are made the way ``smdown demo`` makes them, only tiny: a 0.2 x 0.2 degree
synthetic world of four days (two of them with SMAP over the region), its in-situ table
and training table, a real RF ensemble of 3 trees per texture class (seeded; no
TensorFlow to import), the days mapped by ``backfill`` into ``cube/``, and
``evaluation/metrics.json`` from ``run_evaluation`` (a generated station table and a fixed
linear ensemble, plus the map scores of the tiny cube against the world's truth). Each
notebook is then executed by nbclient in a kernel of this interpreter, with
``SMDOWN_DEMO_DIR`` pointing at those outputs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REGION = (-97.7, 35.3, -97.5, 35.5)
START, END = dt.date(2020, 6, 1), dt.date(2020, 6, 4)
# SMAP of this world (seed 3) covers the region on 1 and 4 June and misses it on the
# others; the fallback to the newest earlier retrieval (<= 3 days) maps all four days.
MAPPED = ["2020-06-01", "2020-06-02", "2020-06-03", "2020-06-04"]
KERNEL = "smdown-nbtest"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo output folder: world/, insitu.parquet, table.parquet, models/rf,
    cube/ (latest.json + store) and evaluation/metrics.json."""
    from models.synthetic import synthetic_table
    from models.train import train_ensemble
    from pipeline.config import Settings
    from pipeline.evaluate.evaluation import run_evaluation
    from pipeline.evaluate.testing import LinearEnsemble, station_table
    from pipeline.insitu import build_insitu
    from pipeline.run import backfill, build_plan
    from pipeline.synth import WorldSpec, write_world
    from pipeline.table import write_table
    from pipeline.table.build import build_from_settings, table_metadata_for

    root = tmp_path_factory.mktemp("demo")
    spec = WorldSpec(
        region=REGION, start=START, end=END, seed=3, n_stations=6, n_ameriflux=1, spinup_days=5
    )
    write_world(spec, root / "world")
    settings = Settings(
        sources={"root": str(root / "world")},
        grid={"name": "conus-90m", "region": REGION, "tile_size": 128},
        output={"store": str(root / "cube"), "chunk_size": 64, "first_year": 2020},
        models={"dir": str(root / "models"), "arch": "rf"},
        table={"path": str(root / "table.parquet")},
    )
    info = json.loads((root / "world" / "world.json").read_text(encoding="utf-8"))
    insitu_cfg = settings.insitu.model_copy(
        update={"wetland_sites": info.get("ismn_wetland_sites", [])}
    )
    build_insitu(root / "world" / "ISMN", root / "world" / "AmeriFlux", insitu_cfg).write(
        root / "insitu"
    )
    built = build_from_settings(settings, insitu=root / "insitu.parquet", mode="training")
    write_table(built.table, root / "table.parquet", table_metadata_for(built, settings.table))
    train_ensemble(
        "rf",
        synthetic_table(n_sites=12, n_days=20, seed=0),
        root / "models" / "rf",
        seed=0,
        n_estimators=3,
        threads=1,
        log=lambda _m: None,
    )
    # 8-day LST (training mode): the daily LST of this world is cloudy on the SMAP days.
    plan = build_plan(settings, mode="training")
    results = backfill(settings, START, END, client=None, plan=plan, today=dt.date(2020, 7, 1))
    assert [r.date.isoformat() for r in results if not r.skipped] == MAPPED
    run_evaluation(
        station_table(n_sites=24, n_days=60, seed=0),
        {"Dense": "unused"},
        out_dir=root / "evaluation",
        loader=lambda _d: LinearEnsemble.skilful(3, seed=1),
        make_figures=False,
        truth_world=root / "world",
        cube=plan.cube.url,
    )
    return root


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernelspec for this interpreter in a private Jupyter path (not the user's)."""
    prefix = tmp_path_factory.mktemp("jupyter")
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", KERNEL],
        check=True,
        capture_output=True,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        yield KERNEL


def _execute(name: str, demo: Path, kernel: str) -> Any:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env_before = os.environ.get("SMDOWN_DEMO_DIR")
    os.environ["SMDOWN_DEMO_DIR"] = str(demo)  # the kernel inherits this environment
    try:
        client = nbclient.NotebookClient(
            nb,
            kernel_name=kernel,
            timeout=300,
            allow_errors=False,
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("SMDOWN_DEMO_DIR", None)
        else:
            os.environ["SMDOWN_DEMO_DIR"] = env_before
    return nb


def _outputs(nb: Any) -> tuple[str, int]:
    """All text the cells printed or returned, and the number of PNG figures shown."""
    text, figures = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                text.append(str(out.data.get("text/plain", "")))
                figures += "image/png" in out.data
            elif out.output_type == "error":  # pragma: no cover - execute() raises first
                text.append("\n".join(out.traceback))
    return "\n".join(text), figures


@pytest.mark.parametrize("name", ["01_read_the_cube.ipynb", "02_metrics.ipynb"])
def test_notebook_is_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert any("SMDOWN_DEMO_DIR" in c.source for c in code)


@pytest.mark.slow
def test_read_the_cube_notebook_runs_on_demo_outputs(demo: Path, kernel: str) -> None:
    nb = _execute("01_read_the_cube.ipynb", demo, kernel)
    text, figures = _outputs(nb)
    assert f"reading {demo.resolve()}" in text
    for day in MAPPED:
        assert day in text  # the published days, listed from day_status
    assert f"mapping {MAPPED[-1]}" in text
    assert "smap_missing" in text and "water" in text  # the decoded flag table
    assert figures == 3  # the day's map, the uncertainty maps, the station's time series


@pytest.mark.slow
def test_metrics_notebook_runs_on_demo_outputs(demo: Path, kernel: str) -> None:
    nb = _execute("02_metrics.ipynb", demo, kernel)
    text, figures = _outputs(nb)
    assert "tables: table5" in text and "validation_class_texture" in text
    assert "SMAP" in text and "subcell_recovered" in text  # headline and map scores shown
    assert figures == 2  # headline bars, per-station boxes
