"""The evaluation's outputs: a self-contained HTML report, ``metrics.json`` and a terminal table.

``EvaluationResults`` holds every table (pandas DataFrames, metrics in m3 m-3
except R), every figure (PNG bytes) and the run's metadata.
:func:`write_report` writes ``report.html`` (figures embedded as base64 PNG,
tables as HTML, inline CSS: no external resource, it opens offline and can be
mailed) and ``metrics.json`` (every table as ``{"columns": [...], "data":
[[...], ...]}``, NaN as null) into one directory; :func:`read_metrics` reads
the JSON back into DataFrames. :func:`headline_table` is the Table-5-like
plain-text summary the CLI prints.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.evaluate.metrics import SMAP

REPORT_NAME = "report.html"
FOLD_ROWS = 60
"""Tables longer than this start folded (``<details>``) in the HTML report."""
METRICS_NAME = "metrics.json"
TABLE5 = "table5"
"""Name of the headline table (each model per split, with SMAP) in ``tables``."""


@dataclass
class EvaluationResults:
    """Everything one evaluation produced: tables, figures (PNG), captions, notes, metadata."""

    title: str = "smdown evaluation"
    meta: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_table(self, name: str, table: pd.DataFrame, caption: str) -> None:
        self.tables[name] = table
        self.captions[name] = caption

    def add_figure(self, name: str, png: bytes, caption: str) -> None:
        self.figures[name] = png
        self.captions[name] = caption


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, pd.Timestamp | np.datetime64):
        return None if pd.isna(v) else pd.Timestamp(v).isoformat()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if v is pd.NA or v is pd.NaT:
        return None
    return str(v)


def table_to_json(table: pd.DataFrame) -> dict[str, Any]:
    """A table as ``{"columns": [...], "data": [[...]]}`` with NaN as null."""
    return {
        "columns": [str(c) for c in table.columns],
        "data": [[_jsonable(v) for v in row] for row in table.itertuples(index=False, name=None)],
    }


def metrics_document(results: EvaluationResults) -> dict[str, Any]:
    """The ``metrics.json`` content: metadata, notes, captions and every table."""
    return {
        "title": results.title,
        "meta": _jsonable(results.meta),
        "notes": list(results.notes),
        "tables": {
            name: {"caption": results.captions.get(name, ""), **table_to_json(t)}
            for name, t in results.tables.items()
        },
        "figures": {name: results.captions.get(name, "") for name in results.figures},
    }


def read_metrics(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """The tables of a ``metrics.json`` as DataFrames (null back to NaN / None)."""
    doc = json.loads(Path(path).read_text("utf-8"))
    out = {}
    for name, t in doc["tables"].items():
        frame = pd.DataFrame(t["data"], columns=t["columns"])
        for col in frame.columns[frame.isna().all(axis=0).to_numpy()]:
            frame[col] = np.nan  # an all-null column was all NaN numbers
        out[name] = frame
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        if not math.isfinite(float(v)):
            return ""
        return f"{float(v):.3f}"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def _html_table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    counts = [str(c).startswith("n_") for c in table.columns]
    for row in table.itertuples(index=False, name=None):
        cells = []
        for v, is_count in zip(row, counts, strict=True):
            cls = ' class="num"' if isinstance(v, int | float | np.number) else ""
            if is_count and isinstance(v, float | np.floating) and float(v).is_integer():
                v = int(v)  # a count column made float by an empty (NaN) row
            cells.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;max-width:1400px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px;margin:.5em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:2px 6px;white-space:nowrap}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:12px}
img{max-width:100%;border:1px solid #eee}.note{color:#8a4b00}
"""


def render_html(results: EvaluationResults) -> str:
    """The report as one HTML string: no external script, style, image or link."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(results.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(results.title)}</h1>",
    ]
    meta = pd.DataFrame(
        [
            (k, json.dumps(_jsonable(v)) if isinstance(v, dict | list) else _fmt(v))
            for k, v in results.meta.items()
            if k != "definitions"
        ],
        columns=["key", "value"],
    )
    parts.append(_html_table(meta))
    if TABLE5 in results.tables:
        parts.append("<h2>Headline</h2>")
        parts.append(f"<pre>{html.escape(headline_table(results))}</pre>")
    if "definitions" in results.meta:
        parts.append(f"<p>{html.escape(str(results.meta['definitions']))}</p>")
    if results.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f'<li class="note">{html.escape(n)}</li>' for n in results.notes)
        parts.append("</ul>")
    for name, table in results.tables.items():
        cap = html.escape(results.captions.get(name, name))
        parts.append(f'<h2 id="{html.escape(name)}">{cap}</h2>')
        if len(table) > FOLD_ROWS:  # long tables (per site) start folded
            parts.append(f"<details><summary>{len(table)} rows</summary>")
            parts.append(_html_table(table))
            parts.append("</details>")
        else:
            parts.append(_html_table(table))
    for name, png in results.figures.items():
        data = base64.b64encode(png).decode("ascii")
        cap = html.escape(results.captions.get(name, name))
        parts.append(f'<h2 id="{html.escape(name)}">{cap}</h2>')
        parts.append(f'<img alt="{cap}" src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: EvaluationResults, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``report.html`` and ``metrics.json`` into ``out_dir`` (atomically); their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / REPORT_NAME
    json_path = out / METRICS_NAME
    doc = json.dumps(metrics_document(results), indent=1, allow_nan=False)
    _atomic_write(json_path, doc.encode("utf-8"))
    _atomic_write(html_path, render_html(results).encode("utf-8"))
    return html_path, json_path


HEADLINE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("r", "R", "{:.3f}"),
    ("ubrmse", "ubRMSE", "{:.4f}"),
    ("rmse", "RMSE", "{:.4f}"),
    ("bias", "bias", "{:+.4f}"),
    ("site_median_r", "site med R", "{:.3f}"),
    ("n_sites", "sites", "{:d}"),
    ("n_days", "site-days", "{:d}"),
)


def headline_table(results: EvaluationResults | pd.DataFrame) -> str:
    """Table 5 as plain text: model, split, pooled R/ubRMSE/RMSE/bias, per-site median R,
    sites and site-days, with SMAP's row on the same site-days below each split's models.

    Metrics in m3 m-3 except R. Takes the results or the ``table5`` frame itself.
    """
    t5 = results.tables.get(TABLE5) if isinstance(results, EvaluationResults) else results
    if t5 is None or t5.empty:
        return "(no results)"
    header = ["model", "split", *(h for _, h, _ in HEADLINE_COLUMNS)]
    lines: list[list[str]] = []
    for split in dict.fromkeys(t5["split"]):
        sub = t5[t5["split"] == split]
        sub = pd.concat([sub[sub["model"] != SMAP], sub[sub["model"] == SMAP]])
        for row in sub.itertuples(index=False):
            rec = row._asdict()
            cells = [str(rec["model"]), str(split)]
            for col, _, fmt in HEADLINE_COLUMNS:
                v = rec.get(col)
                if v is None or (isinstance(v, float) and not math.isfinite(v)):
                    cells.append("-")
                else:
                    cells.append(fmt.format(int(v) if fmt.endswith("d}") else float(v)))
            lines.append(cells)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def fmt_line(cells: list[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(fmt_line(header))
    return "\n".join([fmt_line(header), rule, *(fmt_line(r) for r in lines)])
