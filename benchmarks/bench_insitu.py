"""In-situ parsing speed: an ISMN zip of N stations x Y years of hourly readings.

The archive is generated in a temporary folder in the ISMN "Header+values"
layout (one sensor per station, 0-0.05 m, CRLF line endings, ~10 % of readings
flagged ``D03,D05``, provider flags with spaces), zipped as ISMN delivers it.
Figures: rows per second of the whole ``build_insitu`` (zip inflate, parse, QC,
daily means) and of the parser alone on one station file in both ISMN formats,
with the ratio to ``pandas.read_csv(sep=r"\\s+")`` (C engine) on the same bytes
measured in the same run (pandas cannot keep provider flags with spaces, so it
is a speed reference only).
"""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import InsituConfig
from pipeline.insitu import build_insitu
from pipeline.insitu.ismn import parse_ismn_bytes

LINE = 36  # bytes per value line: "YYYY/MM/DD HH:MM   0.VVVV FFFFFFF M\r\n" (flag padded)


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _stamp_block(start: str, hours: int) -> np.ndarray:
    """(hours, 16) uint8 array of 'YYYY/MM/DD HH:MM' for consecutive hours from ``start``."""
    t = np.datetime64(start, "h") + np.arange(hours)
    text = np.datetime_as_string(t, unit="m")  # YYYY-MM-DDTHH:MM
    raw = np.frombuffer("".join(text.tolist()).encode(), dtype=np.uint8).reshape(hours, 16).copy()
    raw[:, 4] = raw[:, 7] = ord("/")
    raw[:, 10] = ord(" ")
    return raw


def station_lines(stamps: np.ndarray, rng: np.random.Generator) -> bytes:
    """Value lines of one station, built as a fixed-width byte matrix (no per-line Python)."""
    n = len(stamps)
    out = np.full((n, LINE), ord(" "), dtype=np.uint8)
    out[:, :16] = stamps
    sm = np.clip(0.25 + 0.1 * np.sin(np.arange(n) / 500.0) + rng.normal(0, 0.01, n), 0.01, 0.6)
    v = np.round(sm * 10000).astype(np.int64)
    out[:, 19] = ord("0")
    out[:, 20] = ord(".")
    for k, div in enumerate((1000, 100, 10, 1)):
        out[:, 21 + k] = ord("0") + (v // div) % 10
    bad = rng.random(n) < 0.1
    flag = np.frombuffer(b"G      ", dtype=np.uint8)
    dflag = np.frombuffer(b"D03,D05", dtype=np.uint8)
    out[:, 26:33] = flag
    out[bad, 26:33] = dflag
    out[:, 33] = ord("M")
    out[:, 34] = ord("\r")
    out[:, 35] = ord("\n")
    return out.tobytes()


def make_archive(folder: Path, n_stations: int, years: int, seed: int = 0) -> tuple[Path, int]:
    """Write ``Data_bench.zip`` with ``n_stations`` header+values files; returns (path, rows)."""
    rng = np.random.default_rng(seed)
    span = np.datetime64(f"{2015 + years}-01-01T00", "h") - np.datetime64("2015-01-01T00", "h")
    hours = int(span / np.timedelta64(1, "h"))
    stamps = _stamp_block("2015-01-01T00", hours)
    path = folder / "Data_bench.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(n_stations):
            lat = 30.0 + 15.0 * rng.random()
            lon = -120.0 + 40.0 * rng.random()
            station = f"ST{i:04d}"
            head = (
                f"BENCH      BENCH           {station:<17} {lat:9.5f} {lon:11.5f}  300.00"
                "    0.00    0.05 Hydra Probe\r\n"
            ).encode()
            name = f"BENCH_BENCH_{station}_sm_0.000000_0.050000_Hydra-Probe_20150101_20191231.stm"
            zf.writestr(f"BENCH/{station}/{name}", head + station_lines(stamps, rng))
    return path, n_stations * hours


def _ceop_bytes(header_values: bytes) -> bytes:
    """The same station in the CEOP separate-files layout (for the per-file parse rate)."""
    text = header_values.decode()
    head, *rows = text.split("\r\n")
    meta = head.split()
    prefix = f"{meta[0]:<10} {meta[1]:<15} {meta[2]:<17} {meta[3]} {meta[4]} {meta[5]} "
    prefix += f"{meta[6]} {meta[7]}"
    out = [f"{r[:16]} {r[:16]} {prefix} {r[16:].strip()}" for r in rows if r.strip()]
    return ("\r\n".join(out) + "\r\n").encode()


def run(quick: bool = False) -> dict[str, Any]:
    """Rows/s of build_insitu on a generated ISMN zip and of the parser on one file."""
    n_stations, years = (20, 1) if quick else (1000, 5)
    repeats = 3 if quick else 5
    with tempfile.TemporaryDirectory(prefix="smdown-bench-insitu-") as tmp:
        t0 = time.perf_counter()
        archive, rows = make_archive(Path(tmp), n_stations, years)
        t_make = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = build_insitu(archive, None, InsituConfig())
        t_build = time.perf_counter() - t0
        assert result.report.step("ISMN", "data files read").kept == n_stations
        with zipfile.ZipFile(archive) as zf:
            one = zf.read(sorted(zf.namelist())[0])
            name = sorted(zf.namelist())[0]
    n_one = one.count(b"\n") - 1
    ceop = _ceop_bytes(one)
    t_header = _median_seconds(lambda: parse_ismn_bytes(one, name, name), repeats)
    t_ceop = _median_seconds(lambda: parse_ismn_bytes(ceop, name, name), repeats)
    body = one[one.index(b"\n") + 1 :]

    def pandas_parse() -> None:
        pd.read_csv(
            io.BytesIO(body),
            sep=r"\s+",
            header=None,
            names=["date", "time", "value", "flag", "provider"],
            dtype={"date": str, "time": str, "flag": str, "provider": str},
            engine="c",
        )

    t_pandas = _median_seconds(pandas_parse, repeats)
    return {
        "stations": n_stations,
        "years": years,
        "rows": rows,
        "text_mb": round(archive_size_mb(rows), 1),
        "generate_s": round(t_make, 2),
        "build_s": round(t_build, 2),
        "build_rows_per_s": rows / t_build,
        # whole build (inflate + parse + QC + daily) vs pandas' bare C parse of the same rows
        "build_vs_pandas_parse": (rows / t_build) / (n_one / t_pandas),
        "daily_rows": len(result.daily),
        "parse_one_file": {
            "rows": n_one,
            "header_values_rows_per_s": n_one / t_header,
            "ceop_rows_per_s": n_one / t_ceop,
            "pandas_c_whitespace_rows_per_s": n_one / t_pandas,
            "header_values_vs_pandas": t_pandas / t_header,
        },
    }


def archive_size_mb(rows: int) -> float:
    """Uncompressed text size of the value lines, MB."""
    return rows * LINE / 1e6


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2, default=float))
