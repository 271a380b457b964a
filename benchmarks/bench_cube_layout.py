"""Cube layouts compared on one production tile: Zarr format 2 vs format 3, with and without
sharding (``python -m benchmarks.bench_cube_layout [out_dir] [days]``).

One 2400 x 2400 tile (the production ``tile_size``; 1200-pixel chunks, 4 per tile and
day) of packed ``soil_moisture`` (uint16, 30 % fill as water/outside), ``days`` days
written one day at a time as the tile tasks do (a shard never spans two days or two
tiles, so one task still owns whole shards). Per layout: files and bytes per day,
write time per day, one pixel's time series over every day, one day's whole map.
Every figure is the median of repeats in one run; compare ratios, not seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TILE = 2400
CHUNK = 1200


def _field(day: int) -> np.ndarray:
    """A smooth packed field with noise and a fixed 30 % fill region (deterministic)."""
    rng = np.random.default_rng(day)
    y, x = np.mgrid[0:TILE, 0:TILE].astype(np.float32) / TILE
    v = 0.25 + 0.1 * np.sin(6 * x + day / 10) * np.cos(4 * y) + rng.normal(0, 0.01, (TILE, TILE))
    counts = np.clip(np.rint(v / 1e-4), 0, 65534).astype(np.uint16)
    counts[: int(TILE * 0.3), :] = 65535
    return counts


def _layouts() -> dict[str, dict[str, Any]]:
    from numcodecs import Blosc
    from zarr.codecs import BloscCodec

    v2 = Blosc(cname="zstd", clevel=1, shuffle=Blosc.BITSHUFFLE)
    v3 = BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle")
    return {
        "v2 chunk 1200 (current)": {
            "zarr_format": 2,
            "chunks": (1, CHUNK, CHUNK),
            "compressors": v2,
        },
        "v3 chunk 1200": {"zarr_format": 3, "chunks": (1, CHUNK, CHUNK), "compressors": v3},
        "v3 shard 2400, inner 1200": {
            "zarr_format": 3,
            "shards": (1, TILE, TILE),
            "chunks": (1, CHUNK, CHUNK),
            "compressors": v3,
        },
        "v3 shard 2400, inner 300": {
            "zarr_format": 3,
            "shards": (1, TILE, TILE),
            "chunks": (1, 300, 300),
            "compressors": v3,
        },
    }


def _median(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench(out: Path, days: int = 30, repeats: int = 3) -> dict[str, dict[str, float]]:
    import zarr

    fields = [_field(d) for d in range(days)]
    results: dict[str, dict[str, float]] = {}
    for name, kw in _layouts().items():
        path = out / (name.replace(" ", "_").replace(",", "") + ".zarr")
        shutil.rmtree(path, ignore_errors=True)
        arr = zarr.create_array(
            str(path),
            shape=(days, TILE, TILE),
            dtype="uint16",
            fill_value=65535,
            config={"write_empty_chunks": False},
            **kw,
        )
        write_s = []
        for d in range(days):
            t0 = time.perf_counter()
            arr[d] = fields[d]
            write_s.append(time.perf_counter() - t0)
        files = [
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".z", "zarr.json"))
        ]
        nbytes = sum(p.stat().st_size for p in files)
        reader = zarr.open_array(str(path), mode="r")
        series = _median(lambda r=reader: r[:, 1800, 1200], repeats)
        assert int(reader[0, 1800, 1200]) == int(fields[0][1800, 1200])
        day_map = _median(lambda r=reader: r[days // 2], repeats)
        results[name] = {
            "files_per_day": len(files) / days,
            "mb_per_day": nbytes / days / 1e6,
            "write_s_per_day": float(np.median(write_s)),
            "pixel_series_ms_per_day": 1000 * series / days,
            "day_map_s": day_map,
        }
    return results


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "smdown-data/bench/cube_layout")
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    out.mkdir(parents=True, exist_ok=True)
    res = bench(out, days)
    print(
        json.dumps({"days": days, "tile": TILE, "cpus": os.cpu_count(), "layouts": res}, indent=1)
    )


if __name__ == "__main__":
    main()
