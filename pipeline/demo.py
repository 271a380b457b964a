"""The whole chain on a generated demo world: what ``make demo`` / ``smdown demo`` runs.

Steps (each timed and logged): synthesise the world in the real products'
formats (reused when ``world.json`` says it is the same world) -> in-situ QC
and daily means -> training table -> train the Dense 7-member ensemble and
export it to ONNX (its sd calibrated on the validation split) -> map a week on
a local Dask cluster into the Zarr cube -> the DisPATCh baseline on the same
days -> evaluate held-out sites beside SMAP and DisPATCh (and whole maps
against the known truth)
-> quicklook PNGs. Paths come from the configuration, so every other command
(``smdown run``, ``smdown evaluate``, ``smdown export`` ...) works on what the
demo made.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import SmdownError

log = logging.getLogger(__name__)

DEMO_ARCH = "dense"
DEMO_DAYS = 7


@dataclass
class DemoResult:
    """What the demo made, and how long each step took (seconds)."""

    world: Path
    insitu: Path
    table: Path
    model: Path
    cube: str
    evaluation_html: Path
    metrics_json: Path
    quicklooks: list[Path]
    headline: str
    days: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """The paths and timings, as printed at the end of the demo."""
        lines = [
            "",
            self.headline.rstrip(),
            "",
            "What the demo made:",
            f"  synthetic world      {self.world}",
            f"  in-situ daily table  {self.insitu}",
            f"  training table       {self.table}",
            f"  model manifest       {self.model / 'manifest.json'}",
            f"  soil-moisture cube   {self.cube}  (days mapped: {', '.join(self.days)})",
            f"  metrics              {self.metrics_json}",
            f"  HTML report          {self.evaluation_html}",
            f"  quicklooks           {self.quicklooks[0].parent if self.quicklooks else '-'}",
            "",
            "Time per step: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items())
            + f"; total {sum(self.timings.values()):.0f} s",
        ]
        return "\n".join(lines)


@contextmanager
def _step(name: str, timings: dict[str, float], echo: Callable[[str], None]) -> Iterator[None]:
    echo(f"== {name}")
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0
    echo(f"   {name}: {timings[name]:.1f} s")


def _world_is_current(root: Path, spec: Any) -> bool:
    """True when ``root/world.json`` describes exactly ``spec`` (same region, period, seed)."""
    path = root / "world.json"
    if not path.is_file():
        return False
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        info.get("seed") == spec.seed
        and float(info.get("rain_factor", 1.0)) == spec.rain_factor
        and info.get("family", "modis-terra") == spec.family
        and [float(v) for v in info.get("region", [])] == [float(v) for v in spec.region]
        and info.get("start") == spec.start.isoformat()
        and info.get("end") == spec.end.isoformat()
        and (root / "truth").is_dir()
    )


def run_demo(
    settings: Settings,
    *,
    seed: int = 0,
    days: int = DEMO_DAYS,
    epochs: int | None = None,
    fresh: bool = False,
    scheduler: str | None = None,
    echo: Callable[[str], None] = print,
    world_name: str = "demo",
) -> DemoResult:
    """Run the whole chain on the demo world described by ``settings`` and return what it made.

    ``world_name`` picks the climate of ``pipeline.synth.WORLDS`` ("demo", or
    "humid-east" for the second world); region and paths come from ``settings``.
    """
    from pipeline.cluster import open_client
    from pipeline.evaluate.evaluation import run_evaluation
    from pipeline.evaluate.report import headline_table
    from pipeline.export import export_day
    from pipeline.insitu import build_insitu
    from pipeline.run import backfill, build_plan
    from pipeline.synth import world_spec, write_world
    from pipeline.table import write_table
    from pipeline.table.build import build_from_settings, table_metadata_for

    timings: dict[str, float] = {}
    region = settings.grid.region
    if region is None:
        raise SmdownError("grid.region: the demo needs a region (the default one is Oklahoma)")
    # The world is written in the configured family's formats ([sources] family).
    spec = world_spec(world_name, region=tuple(region), seed=seed, family=settings.sources.family)
    world = Path(settings.sources.root)
    work = Path(settings.table.path).parent
    insitu_out = work / "insitu"
    table_path = Path(settings.table.path)
    model_dir = Path(settings.models.dir) / DEMO_ARCH
    eval_dir = work / "evaluation"
    quick_dir = work / "quicklooks"

    with _step("synthesise world", timings, echo):
        if not fresh and _world_is_current(world, spec):
            echo(f"   reusing the demo world in {world} (same seed, region and period)")
        else:
            manifest = write_world(spec, world)
            echo(f"   wrote {sum(len(v) for v in manifest.files.values())} files to {world}")

    # The wetland stations of the synthetic world are the ones a user would list in
    # [insitu] wetland_sites (ISMN does not flag wetlands in its files).
    info = json.loads((world / "world.json").read_text(encoding="utf-8"))
    wetlands = sorted(set(settings.insitu.wetland_sites) | set(info.get("ismn_wetland_sites", [])))
    insitu_cfg = settings.insitu.model_copy(update={"wetland_sites": wetlands})

    with _step("in-situ QC", timings, echo):
        ismn = Path(settings.insitu.ismn) if settings.insitu.ismn else world / "ISMN"
        amf = Path(settings.insitu.ameriflux) if settings.insitu.ameriflux else world / "AmeriFlux"
        insitu = build_insitu(ismn, amf, insitu_cfg)
        insitu.write(insitu_out)
        echo(f"   {insitu.daily['site_id'].nunique()} sites, {len(insitu.daily)} site-days")

    with _step("training table", timings, echo):
        result = build_from_settings(
            settings, insitu=insitu_out.with_suffix(".parquet"), mode="training"
        )
        write_table(result.table, table_path, table_metadata_for(result, settings.table))
        for line in result.report.lines():
            echo(f"   {line}")

    with _step("train dense ensemble", timings, echo):
        from models.train import train_ensemble

        train_ensemble(
            DEMO_ARCH,
            table_path,
            model_dir,
            seed=settings.models.seed,
            epochs=epochs or settings.models.epochs,
            batch_size=settings.models.batch_size,
            patience=settings.models.patience,
            log=lambda s: echo(f"   {s}"),
        )

    end = spec.end
    start = end - dt.timedelta(days=days - 1)
    with _step(f"map {days} days on Dask", timings, echo):
        plan = build_plan(settings, model_dir=model_dir)
        with open_client(settings.cluster, scheduler) as client:
            results = backfill(settings, start, end, client=client, force=True, plan=plan)
        for r in results:
            echo(f"   {r.summary()}")
        failed = [r for r in results if r.reason.startswith("failed")]
        if failed:
            raise SmdownError(f"demo: {len(failed)} day(s) failed: {failed[0].reason}")
        mapped = [r.date.isoformat() for r in results if not r.skipped]
        if not mapped:
            raise SmdownError(f"demo: no day of {start}..{end} had SMAP over the region")
        cube = plan.cube.url

    with _step("DisPATCh baseline", timings, echo):
        from pipeline.evaluate.dispatch import dispatch_days

        dispatch_store = dispatch_days(
            plan, [dt.date.fromisoformat(d) for d in mapped], work / "baselines" / "dispatch.zarr"
        )

    with _step("evaluate", timings, echo):
        evaluation = run_evaluation(
            table_path,
            {"Dense": model_dir},
            split="validation",
            out_dir=eval_dir,
            truth_world=world,
            cube=cube,
            table_cfg=settings.table,
            baselines={"DisPATCh": dispatch_store},
        )
        headline = headline_table(evaluation)
        for key, value in evaluation.meta.get("heldout_within_1sd", {}).items():
            echo(
                f"   {key}: held-out within +-1 sd {100 * value['calibrated_crossfit']:.0f} % "
                f"(calibrated, cross-fitted by site; raw sd {100 * value['raw']:.0f} %)"
            )
        if "map_within_1sd" in evaluation.meta:
            echo(f"   truth map within +-1 sd: {100 * evaluation.meta['map_within_1sd']:.0f} %")

    with _step("quicklooks", timings, echo):
        quicklooks = [
            export_day(cube, dt.date.fromisoformat(d), "png", quick_dir / f"soil_moisture_{d}.png")
            for d in mapped
        ]

    return DemoResult(
        world=world,
        insitu=insitu_out.with_suffix(".parquet"),
        table=table_path,
        model=model_dir,
        cube=cube,
        evaluation_html=eval_dir / "report.html",
        metrics_json=eval_dir / "metrics.json",
        quicklooks=quicklooks,
        headline=headline,
        days=mapped,
        timings=timings,
    )
