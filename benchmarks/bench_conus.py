"""CONUS scale: growth with area, a full (or extrapolated) CONUS 90 m day, profile, core-hours.

Inputs come from ``pipeline.synth.lazy`` (synthetic fields generated on demand
on every product's native lattice: EASE-Grid 2.0 9 km, MODIS sinusoidal
250/500/1000 m, CHIRPS 0.05 deg, SoilGrids Homolosine 250 m, MERIT 3",
Koeppen 1/120 deg), plugged in through the run plan's ``catalog_factory``: the
real static stack, tile task (nearest-index gather, feature block, fused ONNX
ensemble, masks, packing, Zarr chunk writes) and day publication run
unchanged, on a LocalCluster of 1-thread worker processes. Generation time is
counted on the workers and reported apart (``generation_s``): it stands in for
reading the files and is not pipeline work.

Figures (seconds are wall time of one run unless named ``median``; every ratio
is measured in this run):

- ``models``: ONNX fused-ensemble inference of Dense, Prob, WDL (7 members
  each) and RF (one 100-tree forest per texture class) on the same rows, one
  intra-op thread: rows/s per core (median of repeats, CPU seconds too);
- ``profile``: cProfile of one cold 1200 x 1200 all-land tile task (top functions),
  then ``warm``: that tile end to end (gather, resample, infer all members,
  average, encode, write) vs the ensemble alone on the same rows (medians);
  ``end_to_end_over_inference_throughput`` is the issue's ">= 50 %" figure;
- ``scaling``: the same day on 1/64 of CONUS on 1 and on 2 worker processes;
- ``growth``: 1/64, 1/16 and 1/4 of conus-90m (centred windows of the grid,
  same 1200 px tiles): static-stack build and daily run seconds, Mpx/s, peak
  RSS of the whole process tree (psutil, sampled every 0.2 s), and time per
  pixel relative to the smallest region;
- ``conus_day``: the whole conus-90m grid when it is predicted to fit in
  ``FULL_DAY_BUDGET_S`` here, else the 1/4 run extrapolated by pixel count
  (``measured`` says which); static stack reported apart from the daily run;
- ``conus_day.worker_time_share``: where a day's worker time goes (generation,
  features, predict, encode, write; orchestration = workers x wall - task time);
- ``core_hours``: per CONUS day for dense/prob/wdl/rf = measured non-inference
  CPU of the Dense day + each architecture's measured inference cost per row
  x the day's predicted rows (extrapolated; see ``core_hours.method``).

The machine is shared: ``load_avg`` (1, 5, 15 min) is recorded before and after.
"""

from __future__ import annotations

import contextlib
import cProfile
import datetime as dt
import functools
import os
import pstats
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

DAY = dt.date(2020, 6, 1)
CONUS_PX = 31200 * 70800
TARGET_DAY_S = 300.0
TARGET_RSS_GB = 6.0
FULL_DAY_BUDGET_S = 25 * 60.0
"""Run the whole CONUS day only when static + day are predicted to take at most this."""
ARCHS = ("dense", "prob", "wdl", "rf")


# -- measurement helpers ------------------------------------------------------------------
class TreeRSS:
    """Peak resident memory (bytes) of this process and all its descendants, sampled.

    ``peak`` is the whole tree; ``peak_children`` the descendants alone (the Dask
    workers and nannies) and ``peak_self`` this (driver) process alone.
    """

    def __init__(self, interval_s: float = 0.2) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval_s = interval_s
        self.peak = 0
        self.peak_children = 0
        self.peak_self = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> int:
        import psutil

        own = children = 0
        with contextlib.suppress(psutil.Error):
            own = self._proc.memory_info().rss
        kids: list[Any] = []
        with contextlib.suppress(psutil.Error):
            kids = self._proc.children(recursive=True)
        for p in kids:
            with contextlib.suppress(psutil.Error):
                children += p.memory_info().rss
        self.peak = max(self.peak, own + children)
        self.peak_children = max(self.peak_children, children)
        self.peak_self = max(self.peak_self, own)
        return own + children

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> TreeRSS:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def load_avg() -> list[float]:
    """1, 5 and 15 minute load averages (the machine is shared)."""
    return [round(v, 2) for v in os.getloadavg()]


def _median(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median wall s, median CPU s of this process) of ``repeats`` calls after a warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


# -- models -------------------------------------------------------------------------------
def train_models(root: Path, quick: bool, archs: tuple[str, ...] = ARCHS) -> dict[str, Path]:
    """Small ensembles of each architecture (accuracy irrelevant: only their speed is used).

    Networks: 7 members (1 when quick), 2 epochs on a small synthetic table. The quick
    run (smoke test) trains Dense and RF only.
    RF: one forest per texture class, 100 trees (5 when quick), on a table of
    the size bench_models uses (tree depth, hence speed, grows with the table).
    """
    from models.features import WEIGHT_VARIABLES
    from models.synthetic import synthetic_table
    from models.train import train_ensemble

    weights = ("none",) if quick else WEIGHT_VARIABLES
    small = synthetic_table(n_sites=30, n_days=60, seed=0)
    out: dict[str, Path] = {}
    for arch in archs:
        d = root / "models" / arch
        if arch == "rf":
            table = (
                synthetic_table(n_sites=40, n_days=60, seed=0, n_textures=4)
                if quick
                else synthetic_table(n_sites=200, n_days=365, seed=0, n_textures=10)
            )
            train_ensemble(
                "rf", table, d, seed=0, n_estimators=5 if quick else 100, threads=2,
                log=lambda _m: None,
            )  # fmt: skip
        else:
            train_ensemble(
                arch, small, d, seed=0, epochs=1 if quick else 2, batch_size=512, patience=2,
                threads=2, weight_variables=weights, log=lambda _m: None,
            )  # fmt: skip
        out[arch] = d
    return out


def feature_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n plausible (x float32 (n, 9), cats int64 (n, 3)) rows in models.features units."""
    rng = np.random.default_rng(seed)
    lo = np.array([0.05, 0.1, 5.0, 0.0, 5.0, 5.0, 5.0, 0.2, 0.0])
    hi = np.array([0.45, 0.85, 40.0, 12.0, 80.0, 50.0, 8.5, 5.0, 3000.0])
    x = rng.uniform(lo, hi, (n, 9)).astype(np.float32)
    cats = np.column_stack(
        [rng.integers(1, 13, n), rng.choice([4, 10, 12, 14], n), rng.choice([7, 14, 25, 26], n)]
    ).astype(np.int64)
    return x, cats


def inference_costs(dirs: dict[str, Path], n_rows: int, repeats: int) -> dict[str, Any]:
    """Per architecture: fused ONNX ensemble on the same rows, 1 thread: rows/s per core."""
    from models.runtime import Ensemble

    x, cats = feature_rows(n_rows)
    out: dict[str, Any] = {"rows": n_rows}
    for arch, d in dirs.items():
        ens = Ensemble.load(d, intra_op_threads=1)
        c = cats if ens.needs_categoricals else None
        wall, cpu = _median(functools.partial(ens.predict, x, c), repeats)
        out[arch] = {
            "members": ens.n_members,
            "mode": ens.mode,
            "median_s": wall,
            "median_cpu_s": cpu,
            "mrows_per_s_per_core": n_rows / 1e6 / max(cpu, 1e-9),
            "cpu_us_per_row": cpu / n_rows * 1e6,
        }
    return out


# -- runs ---------------------------------------------------------------------------------
def region_grid(fraction_side: float) -> Any:
    """A window of conus-90m centred on the grid, each side ``fraction_side`` of the whole."""
    from grids.named import named_grid

    g = named_grid("conus-90m")
    h, w = round(g.height * fraction_side), round(g.width * fraction_side)
    r0, c0 = (g.height - h) // 2, (g.width - w) // 2
    return g.window(r0, r0 + h, c0, c0 + w)


def _settings(root: Path, model_dir: Path, tile_size: int, name: str) -> Any:
    from pipeline.config import Settings
    from pipeline.synth.lazy import lazy_root

    return Settings(
        sources={"root": lazy_root(0)},
        grid={"name": "conus-90m", "region": None, "tile_size": tile_size},
        output={"store": str(root / name), "first_year": DAY.year},
        models={"dir": str(model_dir.parent), "arch": model_dir.name},
    )


def run_region(
    client: Any, root: Path, model_dir: Path, grid: Any, tile_size: int, name: str
) -> dict[str, Any]:
    """Static stack then one day on ``grid``: seconds, Mpx/s, peak tree RSS, time split."""
    from pipeline.run import build_plan, run_day
    from pipeline.run.static import ensure_static, landcover_year
    from pipeline.synth.lazy import generation_seconds, lazy_catalog, reset_generation_seconds

    settings = _settings(root, model_dir, tile_size, name)
    plan = build_plan(settings, mode="maps", catalog_factory=lazy_catalog, grid=grid)
    splan = plan.static_for(landcover_year(plan, DAY), DAY)
    client.run(reset_generation_seconds)
    with TreeRSS() as rss_static:
        t0 = time.perf_counter()
        land_tiles = ensure_static(splan, client)
        static_s = time.perf_counter() - t0
    gen_static = sum(client.run(generation_seconds).values())
    client.run(reset_generation_seconds)
    n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
    with TreeRSS() as rss_day:
        t0 = time.perf_counter()
        day = run_day(settings, DAY, client=client, plan=plan, force=True)
        day_s = time.perf_counter() - t0
    gen_day = sum(client.run(generation_seconds).values())
    parts = {
        k: sum(t.seconds[k] for t in day.tiles) for k in ("features", "predict", "encode", "write")
    }
    task_s = sum(t.seconds["total"] for t in day.tiles)
    shutil.rmtree(root / name, ignore_errors=True)
    return {
        "grid_px": [grid.height, grid.width],
        "pixels": grid.size,
        "fraction_of_conus": grid.size / CONUS_PX,
        "tiles": len(plan.tiles()),
        "land_tiles": len(land_tiles),
        "land_px": day.n_land,
        "predicted_px": day.n_predicted,
        "static_s": static_s,
        "static_generation_s": gen_static,
        "static_peak_rss_gb": rss_static.peak / 1e9,
        "static_peak_rss_workers_gb": rss_static.peak_children / 1e9,
        "day_s": day_s,
        "day_generation_s": gen_day,
        "day_mpx_per_s": grid.size / 1e6 / day_s,
        "day_peak_rss_gb": rss_day.peak / 1e9,
        "day_peak_rss_workers_gb": rss_day.peak_children / 1e9,
        "day_peak_rss_driver_gb": rss_day.peak_self / 1e9,
        "workers": n_workers,
        "worker_s": {
            **parts,
            "features_excl_generation": parts["features"] - gen_day,
            "tasks_total": task_s,
            "orchestration": max(0.0, n_workers * day_s - task_s),
        },
        "load_avg_after": load_avg(),
    }


def profile_tile(
    root: Path, model_dir: Path, tile_size: int, repeats: int, top: int = 12
) -> dict[str, Any]:
    """cProfile of one cold tile task in this process (index caches cleared): top functions;
    then the warm tile end to end vs the ensemble alone on the same rows (medians)."""
    from grids.named import named_grid
    from grids.resample import clear_caches
    from pipeline.run import build_plan, make_tile, run_day
    from pipeline.run.static import landcover_year
    from pipeline.synth.lazy import lazy_catalog

    grid = named_grid("conus-90m").crop((-97.0, 36.0, -96.0, 37.0))  # one all-land tile
    grid = grid.window(0, tile_size, 0, tile_size)
    settings = _settings(root, model_dir, tile_size, "profile")
    plan = build_plan(settings, mode="maps", catalog_factory=lazy_catalog, grid=grid)
    run_day(settings, DAY, client=None, plan=plan, force=True)  # static stack + warm model
    splan = plan.static_for(landcover_year(plan, DAY), DAY)
    tile = splan.tile(0, 0)
    clear_caches()
    prof = cProfile.Profile()
    c0 = time.process_time()
    prof.enable()
    result = make_tile(splan, tile, DAY)
    prof.disable()
    cpu = time.process_time() - c0
    # Warm: the same tile end to end vs the ensemble alone on that tile's predicted rows.
    from pipeline.run import tile_features
    from pipeline.run.workers import worker_model

    feat = tile_features(splan, tile, DAY)
    sel = ~feat.missing & (feat.surface == 0)
    x_rows = np.ascontiguousarray(feat.x[:, sel].T)
    model = worker_model(splan)
    t_tile, c_tile = _median(lambda: make_tile(splan, tile, DAY), repeats)
    t_inf, c_inf = _median(lambda: model.predict(x_rows), repeats)
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    top_fns = {
        f"{Path(fn).name}:{line}({name})": round(tt, 4)
        for (fn, line, name), (_, _, tt, _, _) in rows[:top]
    }
    shutil.rmtree(root / "profile", ignore_errors=True)
    return {
        "tile_px": tile.grid.size,
        "cold_cpu_s": cpu,
        "cold_parts_s": result.seconds,
        "top_tottime_s": top_fns,
        "warm": {
            "end_to_end_median_s": t_tile,
            "end_to_end_median_cpu_s": c_tile,
            "inference_median_s": t_inf,
            "inference_median_cpu_s": c_inf,
            "predicted_rows": int(x_rows.shape[0]),
            "end_to_end_over_inference_throughput": t_inf / t_tile,
            "end_to_end_over_inference_throughput_cpu": c_inf / c_tile,
            "target": 0.5,
        },
    }


def scaling(root: Path, model_dir: Path, grid: Any, tile_size: int) -> dict[str, Any]:
    """The same day (static stack built, workers warm) on 1 and on 2 worker processes."""
    from pipeline.run import build_plan, run_day
    from pipeline.synth.lazy import generation_seconds, lazy_catalog, reset_generation_seconds

    settings = _settings(root, model_dir, tile_size, "scaling")
    plan = build_plan(settings, mode="maps", catalog_factory=lazy_catalog, grid=grid)
    out: dict[str, Any] = {"grid_px": [grid.height, grid.width], "tiles": len(plan.tiles())}
    for n in (1, 2):
        with _cluster(n) as client:
            run_day(settings, DAY, client=client, plan=plan, force=True)  # static, warm workers
            client.run(reset_generation_seconds)
            t0 = time.perf_counter()
            run_day(settings, DAY, client=client, plan=plan, force=True)
            out[f"{n}_worker_s"] = time.perf_counter() - t0
            out[f"{n}_worker_generation_s"] = sum(client.run(generation_seconds).values())
    out["speedup_2_over_1"] = out["1_worker_s"] / out["2_worker_s"]
    out["target_speedup"] = 1.8
    out["load_avg_after"] = load_avg()
    shutil.rmtree(root / "scaling", ignore_errors=True)
    return out


@contextlib.contextmanager
def _cluster(n_workers: int) -> Iterator[Any]:
    from pipeline.cluster import open_client
    from pipeline.config import ClusterConfig

    with open_client(ClusterConfig(n_workers=n_workers, dashboard=False)) as client:
        yield client


def conus_extent(tile_size: int, samples: int = 40) -> dict[str, float]:
    """Tiles of the whole conus-90m grid, how many hold land, and its land pixels, for the
    lazy world's outline (``samples`` x ``samples`` points per tile; nothing generated)."""
    from grids.named import named_grid
    from pipeline.synth.lazy import on_land

    g = named_grid("conus-90m")
    n_ty, n_tx = -(-g.height // tile_size), -(-g.width // tile_size)
    step = tile_size / samples  # grid pixels between sample points
    rows = (np.arange(n_ty * samples) + 0.5) * step
    cols = (np.arange(n_tx * samples) + 0.5) * step
    a, _, c, _, e, f = g.transform
    land = on_land((c + cols * a)[None, :], (f + rows * e)[:, None])
    inside = (rows < g.height)[:, None] & (cols < g.width)[None, :]  # partial edge tiles
    land &= inside
    per_tile = land.reshape(n_ty, samples, n_tx, samples).sum(axis=(1, 3))
    return {
        "tiles": n_ty * n_tx,
        "land_tiles": int((per_tile > 0).sum()),
        "land_px": float(land.sum() / inside.sum() * g.size),
    }


def core_hours(
    day: dict[str, Any], costs: dict[str, Any], k_day: float, k_rows: float, basis: str
) -> dict[str, Any]:
    """Core-hours per CONUS day per architecture (see the module docstring)."""
    worker_s = day["workers"] * day["day_s"] * k_day
    predict_s = day["worker_s"]["predict"] * k_day
    gen_s = day["day_generation_s"] * k_day
    rows = day["predicted_px"] * k_rows
    non_inference = worker_s - predict_s - gen_s
    out: dict[str, Any] = {
        "method": (
            "(workers x wall - in-pipeline predict - input generation) of the Dense day, "
            + basis
            + ", plus each architecture's measured 1-thread inference CPU per row x predicted rows"
        ),
        "non_inference_core_h": non_inference / 3600,
        "predicted_rows": rows,
    }
    for arch in ARCHS:
        if arch in costs:
            inf = costs[arch]["cpu_us_per_row"] * 1e-6 * rows
            out[arch] = {
                "inference_core_h": inf / 3600,
                "total_core_h": (non_inference + inf) / 3600,
            }
    out["dense_in_pipeline_core_h"] = (worker_s - gen_s) / 3600
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """Growth with area, a CONUS day (measured or extrapolated), profile and core-hours."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(tempfile.mkdtemp(prefix="smdown-bench-conus-"))
    out: dict[str, Any] = {"load_avg_before": load_avg(), "day": DAY.isoformat()}
    try:
        # Trained in a spawned process, so this driver stays as lean as `smdown run`'s
        # (no TensorFlow in it) and its RSS is the pipeline's.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        archs = ("dense", "rf") if quick else ARCHS
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            dirs = pool.submit(train_models, root, quick, archs).result()
        out["models"] = inference_costs(dirs, 20_000 if quick else 200_000, 3 if quick else 5)
        tile = 240 if quick else 1200
        sides = (1 / 96, 1 / 48) if quick else (1 / 8, 1 / 4, 1 / 2)
        names = ("1/9216", "1/2304") if quick else ("1/64", "1/16", "1/4")
        out["profile"] = profile_tile(root, dirs["dense"], tile, 3 if quick else 5)
        out["scaling"] = scaling(root, dirs["dense"], region_grid(1 / 48 if quick else 1 / 8), tile)
        growth: dict[str, Any] = {}
        with _cluster(2) as client:
            for side, name in zip(sides, names, strict=True):
                growth[name] = run_region(
                    client, root, dirs["dense"], region_grid(side), tile, f"g{len(growth)}"
                )
            base = next(iter(growth.values()))
            for g in growth.values():
                g["s_per_px_vs_smallest"] = (g["day_s"] / g["pixels"]) / (
                    base["day_s"] / base["pixels"]
                )
                g["rss_vs_smallest"] = g["day_peak_rss_gb"] / base["day_peak_rss_gb"]
            out["growth"] = growth
            largest = list(growth.values())[-1]
            # A day's work is per tile holding land (ocean tiles are skipped), the static
            # stack's per tile, and inference per land pixel: scale each by its own count.
            ext = conus_extent(tile)
            k_static = ext["tiles"] / largest["tiles"]
            k_day = ext["land_tiles"] / largest["land_tiles"]
            k_rows = ext["land_px"] / largest["land_px"]
            predicted = largest["static_s"] * k_static + largest["day_s"] * k_day
            full = (not quick) and predicted <= FULL_DAY_BUDGET_S
            if full:
                from grids.named import named_grid

                day = run_region(client, root, dirs["dense"], named_grid("conus-90m"), tile, "c")
            else:
                day = largest
        conus: dict[str, Any] = {
            "measured": full,
            "basis": "whole conus-90m"
            if full
            else (
                f"{names[-1]} of CONUS; static x{k_static:.2f} (tiles), day x{k_day:.2f} "
                f"(tiles holding land), inference rows x{k_rows:.2f} (land pixels)"
            ),
            "conus_tiles": ext["tiles"],
            "conus_land_tiles": ext["land_tiles"],
            "conus_land_fraction": ext["land_px"] / CONUS_PX,
            "predicted_static_plus_day_s": predicted,
        }
        if full:
            k_static = k_day = k_rows = 1.0
        conus["static_stack_s"] = day["static_s"] * k_static
        conus["day_s"] = day["day_s"] * k_day
        conus["day_excl_generation_s"] = (
            day["day_s"] - day["day_generation_s"] / day["workers"]
        ) * k_day
        conus["day_peak_rss_gb"] = day["day_peak_rss_gb"]
        conus["day_peak_rss_workers_gb"] = day["day_peak_rss_workers_gb"]
        conus["day_peak_rss_driver_gb"] = day["day_peak_rss_driver_gb"]
        conus["static_peak_rss_gb"] = day["static_peak_rss_gb"]
        conus["target_day_s"] = TARGET_DAY_S
        conus["day_over_target"] = conus["day_excl_generation_s"] / TARGET_DAY_S
        conus["target_rss_gb"] = TARGET_RSS_GB
        # The pipeline's processes: workers (+ nannies) and the driver; the driver of this
        # benchmark also holds whatever earlier benchmarks of the same `smdown bench` loaded.
        conus["rss_within_target_workers"] = bool(day["day_peak_rss_workers_gb"] <= TARGET_RSS_GB)
        conus["rss_within_target_tree"] = bool(day["day_peak_rss_gb"] <= TARGET_RSS_GB)
        conus["run"] = day if full else "see growth." + names[-1]
        split = day["worker_s"]
        total = day["workers"] * day["day_s"]
        conus["worker_time_share"] = {
            "generation": day["day_generation_s"] / total,
            "features_excl_generation": split["features_excl_generation"] / total,
            "predict": split["predict"] / total,
            "encode": split["encode"] / total,
            "write": split["write"] / total,
            "orchestration": split["orchestration"] / total,
        }
        out["conus_day"] = conus
        out["core_hours"] = core_hours(day, out["models"], k_day, k_rows, conus["basis"])
        out["load_avg_after"] = load_avg()
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1, default=str))
