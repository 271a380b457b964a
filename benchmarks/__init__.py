"""Benchmarks: speed as ratios measured in one run, never timed tests.

Each module ``benchmarks/bench_<name>.py`` exposes ``run(quick: bool = False) -> dict``
returning flat or nested figures (seconds are medians of repeated runs). ``smdown bench``
runs them and writes ``bench.json`` and ``bench.md``.
"""

from __future__ import annotations

BENCHMARKS: tuple[str, ...] = ("grids", "insitu", "models", "run", "conus", "speed")
