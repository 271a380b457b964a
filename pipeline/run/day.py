"""Day orchestration: plan, guards, static stack, one task per land tile, publish.

Publishing order of a day (``run_day``):

1. guards, before anything is written: the store's structure (grid, chunks,
   dtypes, variables, model hash) must match the plan (``PublishGuardError``);
   a final day is skipped unless ``force``; the day's lock file is taken
   (``LockHeldError`` names the holder when another run is at it);
2. the cube is created (metadata only) or its time axis extended to the
   day's year; a day being re-made is first set to status 0 (absent), so a
   reader never takes a half-rewritten day for a published one;
3. the static stack is built if needed; one task per tile holding land;
4. after every task succeeded: the day's provenance JSON, then ``day_status``
   (1 provisional or 2 final), then the consolidated metadata, then
   ``latest.json`` beside the stores.

Status rule (``decide_status``): final (2) when the inputs cover at least
``output.min_coverage_final`` of the land pixels (coverage = predicted land
pixels / land pixels; SMAP swath gaps and missing inputs lower it) and the day
is at least ``output.final_after_days`` days old (UTC) so late or revised
inputs have arrived, and the day's own SMAP file has landed (a day mapped from
earlier retrievals only stays provisional); provisional (1) otherwise. Every
input goes through its fallback chain (``pipeline.run.fallback``), so a day is
refused (``NoDataDayError``, status stays absent 0) only when no land pixel could
be predicted at all. The inputs still missing at some land pixels are named with
their pixel counts in a warning, in the day's provenance (``missing_pixels``,
with ``fallback_pixels`` and ``smap_age_pixels``) and in the refusal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.variables import daily_names
from pipeline.config import Settings
from pipeline.cube import (
    DAY_ABSENT,
    DAY_FINAL,
    DAY_PROVISIONAL,
    Cube,
    assert_disjoint_chunks,
    hold_lock,
    lock_path,
)
from pipeline.errors import RunError, SmdownError
from pipeline.run.fallback import AGE_NONE
from pipeline.run.plan import Mode, PublishRules, RunPlan, build_plan
from pipeline.run.static import ensure_static, landcover_year
from pipeline.run.tasks import TaskLimits, gather_tasks
from pipeline.run.tile import TileResult, make_tile
from pipeline.run.workers import sources_by_variable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayResult:
    """What happened to one day."""

    date: dt.date
    store: str
    status: int
    skipped: bool = False
    reason: str = ""
    n_tiles: int = 0
    n_land: int = 0
    n_predicted: int = 0
    coverage: float = 0.0
    seconds: float = 0.0
    tiles: tuple[TileResult, ...] = field(default_factory=tuple, repr=False)

    def summary(self) -> str:
        names = {DAY_ABSENT: "absent", DAY_PROVISIONAL: "provisional", DAY_FINAL: "final"}
        if self.skipped:
            return f"{self.date}: skipped ({self.reason})"
        return (
            f"{self.date}: {names.get(self.status, self.status)}, {self.n_tiles} tiles, "
            f"coverage {self.coverage:.1%} of {self.n_land} land pixels, {self.seconds:.1f} s"
        )


def decide_status(coverage: float, date: dt.date, cfg: PublishRules, today: dt.date) -> int:
    """2 final when coverage >= min_coverage_final and the day is >= final_after_days old."""
    old_enough = (today - date).days >= cfg.final_after_days
    return DAY_FINAL if coverage >= cfg.min_coverage_final and old_enough else DAY_PROVISIONAL


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def day_provenance(plan: RunPlan, date: dt.date, tiles: Sequence[TileResult]) -> dict[str, Any]:
    """The JSON record of a day: input files and staleness per variable, model, software."""
    inputs: dict[str, set[str]] = {}
    stale: dict[str, int] = {}
    for t in tiles:
        for var, files in t.inputs.items():
            inputs.setdefault(var, set()).update(files)
        for var, days in t.days_stale.items():
            stale[var] = max(stale.get(var, 0), days)
    counts = input_counts(tiles)
    return {
        "date": date.isoformat(),
        "mode": plan.mode,
        "inputs": {k: sorted(v) for k, v in sorted(inputs.items())},
        "days_stale": dict(sorted(stale.items())),
        "missing_pixels": counts["missing_pixels"],
        "fallback_pixels": counts["fallback_pixels"],
        "smap_age_pixels": counts["smap_age_pixels"],
        "missing_files": counts["missing_files"],
        "model_arch": plan.model.arch,
        "model_manifest_hash": plan.model.manifest_hash,
        "model_dir": plan.model_dir,
        "software_version": plan.model.software_version,
        "grid_name": plan.grid_name,
        "grid_key": plan.grid.key(),
        "static_stack": plan.static.url,
        "static_inputs": _static_inputs(plan),
        "n_tiles": len(tiles),
    }


def input_counts(tiles: Sequence[TileResult]) -> dict[str, Any]:
    """Land pixels per input still missing, per fallback level, per SMAP age (all tiles)."""
    missing: dict[str, int] = {}
    levels: dict[str, dict[str, int]] = {}
    ages: dict[int, int] = {}
    files: set[str] = set()
    for t in tiles:
        for var, n in t.n_missing.items():
            missing[var] = missing.get(var, 0) + n
        for var, by_level in t.levels.items():
            mine = levels.setdefault(var, {})
            for label, n in by_level.items():
                mine[label] = mine.get(label, 0) + n
        for age, n in t.smap_ages.items():
            ages[age] = ages.get(age, 0) + n
        files.update(t.missing_files)
    return {
        "missing_pixels": {k: v for k, v in sorted(missing.items()) if v},
        "fallback_pixels": {k: dict(v) for k, v in sorted(levels.items())},
        "smap_age_pixels": {
            ("none" if a == AGE_NONE else str(a)): n for a, n in sorted(ages.items())
        },
        "missing_files": sorted(files),
    }


def missing_summary(missing: dict[str, int], n_land: int) -> str:
    """ "smap 1200 of 5000 land pixels, lst 30" (inputs missing after their chains)."""
    if not missing:
        return "none"
    parts = [f"{var} {n}" for var, n in sorted(missing.items(), key=lambda kv: -kv[1])]
    return ", ".join(parts) + f" of {n_land} land pixels"


def _static_inputs(plan: RunPlan) -> dict[str, list[str]]:
    """The files the static stack was built from (recorded in its attributes)."""
    from pipeline.cube.store import open_group

    try:
        attrs = open_group(plan.static, "r").attrs.asdict()
    except (KeyError, ValueError, OSError, FileNotFoundError):  # no stack (plans by hand)
        return {}
    files = attrs.get("input_files", {})
    if not isinstance(files, dict):
        return {}
    return {str(k): [str(f) for f in v] for k, v in files.items()}


def _write_latest(plan: RunPlan) -> None:
    record = {
        "store": plan.store_name,
        "model_arch": plan.model.arch,
        "model_manifest_hash": plan.model.manifest_hash,
        "grid_name": plan.grid_name,
        "updated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    spec = plan.root.child("latest.json")
    payload = json.dumps(record, indent=1).encode("utf-8")
    if spec.is_local:
        path = Path(spec.local_path)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_bytes(payload)
        tmp.replace(path)
    else:
        fs, p = spec.filesystem()
        fs.pipe_file(p, payload)


def run_day(
    settings: Settings,
    date: dt.date,
    *,
    client: Any,
    force: bool = False,
    mode: Mode = "maps",
    plan: RunPlan | None = None,
    today: dt.date | None = None,
) -> DayResult:
    """Make the map of ``date`` into the cube (see the module docstring for the order).

    Everything comes from the plan (``build_plan(settings)`` when none is given): store,
    grid, model, and its ``publish`` rules (lock waits, final/provisional rule, limits).
    """
    t0 = time.perf_counter()
    plan = plan or build_plan(settings, mode=mode)
    rules = plan.publish
    limits = TaskLimits(rules.task_timeout_s, rules.paused_timeout_s)
    cube = Cube(plan.cube, plan.layout)
    cube.guard_structure(plan.model)
    if cube.exists() and not force and cube.day_status(date) == DAY_FINAL:
        return DayResult(date, plan.cube.url, DAY_FINAL, skipped=True, reason="final already")
    locks = {"timeout_s": rules.lock_timeout_s, "stale_after_s": rules.lock_stale_after_s}
    meta_lock = lock_path(plan.root, plan.store_name, "metadata")
    with hold_lock(lock_path(plan.root, plan.store_name, date.isoformat()), f"day {date}", **locks):
        with hold_lock(meta_lock, "cube metadata", **locks):
            if not cube.exists():
                cube.create(plan.model, date)
            else:
                cube.guard_structure(plan.model)
                cube.ensure_day(date)
            previous = cube.day_status(date)
            if previous == DAY_FINAL and not force:
                return DayResult(date, plan.cube.url, previous, skipped=True, reason="final")
            if previous != DAY_ABSENT:
                cube.set_day_status(date, DAY_ABSENT)
        plan = _with_static(plan, date)
        tiles = _static_tiles(plan, client, rules.lock_timeout_s, limits)
        assert_disjoint_chunks(plan.layout, [t.window for t in tiles])
        results: list[TileResult] = gather_tasks(
            client,
            make_tile,
            [(plan, t, date) for t in tiles],
            [f"smdown-tile-{date.isoformat()}-{t.iy}-{t.ix}" for t in tiles],
            label=f"map {date}",
            limits=limits,
        )
        n_land = sum(r.n_land for r in results)
        n_pred = sum(r.n_predicted for r in results)
        coverage = n_pred / n_land if n_land else 0.0
        if n_land and not n_pred:
            _refuse_empty_day(date, results)
        status = decide_status(coverage, date, rules, today or _utc_today())
        record = day_provenance(plan, date, results)
        if record["missing_files"] and status == DAY_FINAL:
            status = DAY_PROVISIONAL  # mapped without the day's own file of an input
        if record["missing_pixels"]:
            log.warning(
                "%s: land pixels missing an input after its fallback chain: %s",
                date,
                missing_summary(record["missing_pixels"], n_land),
            )
        record.update(status=status, coverage=coverage, n_land=n_land, n_predicted=n_pred)
        with hold_lock(meta_lock, "cube metadata", **locks):
            cube.write_provenance(date, record)
            cube.set_day_status(date, status)
            cube.consolidate()
            _write_latest(plan)
    result = DayResult(
        date,
        plan.cube.url,
        status,
        n_tiles=len(results),
        n_land=n_land,
        n_predicted=n_pred,
        coverage=coverage,
        seconds=time.perf_counter() - t0,
        tiles=tuple(results),
    )
    log.info("%s", result.summary())
    return result


class NoDataDayError(RunError):
    """No land pixel of the day could be predicted (e.g. the region lies in a SMAP swath gap).

    The day is not published (its status stays absent). ``backfill`` reports it as
    "no data", distinct from a failure: on a small region a day without any SMAP
    retrieval is normal (SMAP revisits a place every 2-3 days).
    """


def _refuse_empty_day(date: dt.date, results: Sequence[TileResult]) -> None:
    """No land pixel could be predicted: never publish an all-fill day (status stays 0)."""
    n_land = sum(r.n_land for r in results)
    smap_files = sorted({f for r in results for f in r.inputs.get("smap", [])})
    missing = input_counts(results)["missing_pixels"]
    why = f"inputs missing after their fallback chains: {missing_summary(missing, n_land)}"
    if missing.get("smap", 0) >= n_land:
        why = (
            "SMAP has no valid retrieval over the region within the allowed age "
            f"(files read: {', '.join(smap_files) or 'none'}); {why}"
        )
    raise NoDataDayError(
        f"{date}: no land pixel of {n_land} could be predicted: {why}; not published"
    )


def _with_static(plan: RunPlan, date: dt.date) -> RunPlan:
    return plan.static_for(landcover_year(plan, date), date)


def _static_tiles(
    plan: RunPlan, client: Any, lock_timeout_s: float, limits: TaskLimits
) -> list[Any]:
    return ensure_static(plan, client, lock_timeout_s=lock_timeout_s, limits=limits)


def backfill(
    settings: Settings,
    start: dt.date,
    end: dt.date,
    *,
    client: Any,
    force: bool = False,
    mode: Mode = "maps",
    plan: RunPlan | None = None,
    today: dt.date | None = None,
) -> list[DayResult]:
    """Make every day of [start, end] that is not final (all with ``force``), oldest first.

    A day that cannot be made is reported with status 0 and its reason, and the
    others go on: "waiting for inputs" (an input file has not landed yet), "no
    data" (nothing over the region could be predicted), or "failed" (anything
    else, e.g. a corrupt file); only "failed" days make ``smdown backfill`` exit 1.
    """
    if end < start:
        raise RunError(f"backfill: end {end} is before start {start}")
    plan = plan or build_plan(settings, mode=mode)
    results: list[DayResult] = []
    day = start
    while day <= end:
        try:
            results.append(
                run_day(settings, day, client=client, force=force, plan=plan, today=today)
            )
        except SmdownError as exc:
            from pipeline.cube import LockHeldError
            from pipeline.errors import PublishGuardError

            if isinstance(exc, PublishGuardError | LockHeldError):
                raise
            from pipeline.sources.base import MissingInputError

            if isinstance(exc, NoDataDayError):
                log.warning("%s", exc)
                reason = f"no data: {exc}"
            elif isinstance(exc, MissingInputError):
                # An input of the day has not landed yet (SMAP ~2 days, CHIRPS later):
                # the day stays absent and a later backfill makes it.
                log.warning("%s: waiting for inputs: %s", day, exc)
                reason = f"waiting for inputs: {exc}"
            else:
                log.error("%s: %s", day, exc)
                reason = f"failed: {exc}"
            results.append(DayResult(day, plan.cube.url, DAY_ABSENT, skipped=True, reason=reason))
        day += dt.timedelta(days=1)
    return results


def latest_available_date(
    catalog: Any,
    *,
    mode: Mode = "maps",
    today: dt.date | None = None,
    lookback_days: int = 30,
) -> dt.date:
    """The newest day (up to ``today``, UTC) for which every daily input is available.

    Candidates are the days of the SMAP granules in the catalog's inventory
    (SMAP is the daily input that arrives last), newest first, at most
    ``lookback_days`` of them; a catalog without an inventory is searched day by
    day over the ``lookback_days`` before ``today``.
    """
    srcs = sources_by_variable(catalog.sources(mode))
    last = today or _utc_today()
    smap_days = getattr(getattr(catalog, "inventory", None), "smap", None)
    if isinstance(smap_days, dict) and smap_days:
        candidates = sorted((d for d in smap_days if d <= last), reverse=True)[:lookback_days]
    else:
        candidates = [last - dt.timedelta(days=i) for i in range(lookback_days + 1)]
    for day in candidates:
        if all(var in srcs and srcs[var].available(day) is not None for var in daily_names()):
            return day
    raise RunError(
        f"no day among {len(candidates)} candidate(s) up to {last} has every daily input "
        f"({', '.join(daily_names())}) available"
    )
