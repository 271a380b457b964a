"""Daily production speed: one tile end to end vs pure inference, and 1 vs 2 Dask workers.

On a synthetic world (``pipeline.synth``, real file formats read by the real
readers) with a small trained Dense ensemble, all measured in one run:

- ``tile``: one tile task (``make_tile``: read natives + static stack, build the
  feature block, predict, mask, pack, write its chunks) in this process, warm
  caches, median seconds; and its parts (features, predict, write);
- ``inference``: ``Ensemble.predict`` alone on the same tile's (n, 9) block;
  ``tile_over_inference`` is the overhead factor of everything around the model;
- ``day``: wall seconds of a forced re-run of one day (warm workers) on a
  LocalCluster with 1 and with 2 worker processes (1 thread each), and the
  speed-up; ``pixels_per_s`` of the 2-worker run.

Seconds depend on the machine; the ratios are the figures to compare.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DAY = dt.date(2020, 6, 1)


def _median(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _setup(root: Path, quick: bool) -> Any:
    from models.synthetic import synthetic_table
    from models.train import train_ensemble
    from pipeline.config import Settings
    from pipeline.synth import WorldSpec, write_world

    deg = 0.4 if quick else 1.0
    region = (-98.0, 35.0, -98.0 + deg, 35.0 + deg)
    spec = WorldSpec(
        region=region,
        start=DAY,
        end=DAY,
        seed=1,
        n_stations=4,
        n_ameriflux=1,
        spinup_days=5,
    )
    write_world(spec, root / "world")
    from models.features import WEIGHT_VARIABLES

    weights = ("texture", "none") if quick else WEIGHT_VARIABLES  # 2 or the paper's 7 members
    train_ensemble(
        "dense",
        synthetic_table(n_sites=30, n_days=60, seed=0),
        root / "models" / "dense",
        seed=0,
        epochs=1 if quick else 5,
        batch_size=512,
        patience=2,
        threads=1,
        weight_variables=weights,
        log=lambda _m: None,
    )
    return Settings(
        sources={"root": str(root / "world")},
        grid={"name": "conus-90m", "region": region, "tile_size": 240 if quick else 600},
        output={"store": str(root / "cube"), "first_year": 2020},
        models={"dir": str(root / "models"), "arch": "dense"},
    )


def run(quick: bool = False) -> dict[str, Any]:
    """Seconds and ratios of one tile end to end vs inference, and of 1 vs 2 workers."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from pipeline.cluster import open_client
    from pipeline.config import ClusterConfig
    from pipeline.run import build_plan, make_tile, run_day, tile_features
    from pipeline.run.static import landcover_year
    from pipeline.run.workers import worker_model

    repeats = 3 if quick else 7
    root = Path(tempfile.mkdtemp(prefix="smdown-bench-run-"))
    try:
        settings = _setup(root, quick)
        plan = build_plan(settings, mode="training")
        # Build the static stack and the day once in this process (warms every cache).
        run_day(settings, DAY, client=None, plan=plan, force=True)
        splan = plan.static_for(landcover_year(plan, DAY), DAY)
        tile = splan.tile(0, 0)
        result = make_tile(splan, tile, DAY)
        t_tile = _median(lambda: make_tile(splan, tile, DAY), repeats)
        feat = tile_features(splan, tile, DAY)
        t_feat = _median(lambda: tile_features(splan, tile, DAY), repeats)
        model = worker_model(splan)
        sel = ~feat.missing & (feat.surface == 0)
        rows = feat.x[:, sel].T.copy()
        t_inf = _median(lambda: model.predict(rows), repeats)

        day: dict[str, float] = {}
        n_pixels = plan.grid.size
        for n in (1, 2):
            with open_client(ClusterConfig(n_workers=n, dashboard=False)) as client:
                run_day(settings, DAY, client=client, plan=plan, force=True)  # warm workers
                t0 = time.perf_counter()
                run_day(settings, DAY, client=client, plan=plan, force=True)
                day[f"{n}_worker_s"] = time.perf_counter() - t0
        return {
            "load_avg": [round(v, 2) for v in os.getloadavg()],
            "grid_px": [plan.grid.height, plan.grid.width],
            "tile_px": tile.grid.size,
            "n_tiles": len(plan.tiles()),
            "members": int(getattr(model, "n_members", 0)),
            "predicted_rows": int(rows.shape[0]),
            "tile": {
                "end_to_end_s": t_tile,
                "features_s": t_feat,
                "write_s": result.seconds["write"],
                "mpx_per_s": tile.grid.size / 1e6 / t_tile,
            },
            "inference": {
                "predict_s": t_inf,
                "rows_per_s": rows.shape[0] / t_inf,
            },
            "tile_over_inference": t_tile / t_inf,
            "day": {
                **day,
                "speedup_2_over_1": day["1_worker_s"] / day["2_worker_s"],
                "pixels_per_s_2_workers": n_pixels / day["2_worker_s"],
            },
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=1))
