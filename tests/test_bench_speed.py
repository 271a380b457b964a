"""Smoke run of the quick issue-19 speed benchmark: figures exist, the kernel is in use and
changes no published value (its speed is a benchmark figure, never asserted here)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_speed_benchmark_gives_figures_and_identical_values() -> None:
    from benchmarks import bench_speed

    got = bench_speed.run(quick=True)
    inf = got["inference"]
    assert inf["kernel_mode"] == "kernel"
    assert inf["published_counts_differing"] == {"mean": 0, "sd": 0, "spread": 0}
    assert inf["float32_values_differing"] == 0
    for key in ("fused_cpu_us_per_row", "kernel_cpu_us_per_row", "speedup_vs_fused_ort"):
        assert inf[key] > 0, key
    feat = got["features"]
    for key in ("cold_features_cpu_s", "warm_features_cpu_s", "sinusoidal_speedup"):
        assert feat[key] > 0, key
    assert got["conus_day"]["measured_whole"] is False
    assert got["conus_day"]["wall_s"] > 0 and got["region_day"]["day_s"] > 0
