"""Daily production on Dask: plan, static stack, tile tasks, day orchestration.

``run_day(settings, date, client=...)`` makes one day of the cube,
``backfill`` a range, ``latest_available_date`` finds the newest day with
every input; ``make_tile``/``tile_features`` are the per-tile task and its
feature step (see the modules for the rules).
"""

from pipeline.run.day import (
    DayResult,
    NoDataDayError,
    backfill,
    decide_status,
    latest_available_date,
    run_day,
)
from pipeline.run.plan import RunPlan, build_plan, default_chunk, output_grid
from pipeline.run.tile import TileFeatures, TileResult, make_tile, tile_features

__all__ = [
    "DayResult",
    "NoDataDayError",
    "RunPlan",
    "TileFeatures",
    "TileResult",
    "backfill",
    "build_plan",
    "decide_status",
    "default_chunk",
    "latest_available_date",
    "make_tile",
    "output_grid",
    "run_day",
    "tile_features",
]
