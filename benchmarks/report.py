"""Run benchmark modules and write their figures as JSON and a Markdown table."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from benchmarks import BENCHMARKS


def flatten(figures: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts -> [("a.b.c", value)], in insertion order."""
    rows: list[tuple[str, Any]] = []
    for key, value in figures.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            rows += flatten(value, name)
        else:
            rows.append((name, value))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def to_markdown(results: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """One table per benchmark: figure, value."""
    lines = ["# smdown benchmarks", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in meta.items()]
    for name, figures in results.items():
        lines += ["", f"## {name}", "", "| figure | value |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in flatten(figures)]
    return "\n".join(lines) + "\n"


def machine_info() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def load(name: str) -> Callable[..., dict[str, Any]]:
    """The ``run`` function of ``benchmarks/bench_<name>.py``."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    module = importlib.import_module(f"benchmarks.bench_{name}")
    return module.run  # type: ignore[no-any-return]


def run_all(
    names: Iterable[str], out_dir: Path, *, quick: bool = False, log: Callable[[str], None] = print
) -> tuple[Path, Path]:
    """Run the named benchmarks, write bench.json and bench.md into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        log(f"benchmark {name} ...")
        t0 = time.perf_counter()
        results[name] = load(name)(quick=quick)
        log(f"benchmark {name}: {time.perf_counter() - t0:.1f} s")
    meta = machine_info() | {"quick": quick}
    json_path = out_dir / "bench.json"
    md_path = out_dir / "bench.md"
    json_path.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
    md_path.write_text(to_markdown(results, meta))
    return json_path, md_path
