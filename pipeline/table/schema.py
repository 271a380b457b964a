"""The training-table schema (docs/table-schema.md) and its atomic Parquet I/O.

One row per (site, day) with an in-situ daily mean and all nine inputs:

| column | dtype | meaning |
| --- | --- | --- |
| site_id | str | ``<network>:<station>`` as the in-situ table names it |
| date | datetime64[ns] | the UTC day |
| sm | float64 | in-situ daily mean soil moisture, m3 m-3 (the target) |
| smap ... elevation | float32 | the nine inputs, ``models.features.FEATURE_NAMES`` order/units |
| api ... doy_cos | float32 | only in a table of the ``extended`` set: its added inputs |
| texture, landcover, koppen | int16 | static reference codes (models/features.py tables) |
| texture_name, landcover_name, koppen_name | str | their names |
| split | str | "train" or "validation" (site-disjoint, per texture class) |
| fold | int8 | CV fold of the site, 0..n_folds-1 |
| cv_holdout | bool | site of a small texture class held out of every CV training set |
| w_texture ... w_none | float64 | balanced sample weights (pipeline/table/weights.py) |
| lst_composite, et_composite, ndvi_composite | datetime64[ns] | first day of the composite used |
| lst_days_stale, et_days_stale | int16 | 0 inside the composite's period, else days past its end |
| smap_file | str | the SPL3SMP_E granule the SMAP value came from |
| network, group | str | in-situ network and source group (ismn/ameriflux) |
| lat, lon | float64 | site position, degrees (WGS 84) |
| row, col | int64 | the site's pixel on the target 90 m grid (``[grid]`` name/region) |

Rows are sorted by (site_id, date). File-level metadata (Parquet key
``smdown``) records the feature order, the target grid key, bin edges and
seeds.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.features import CATEGORICALS, FEATURE_NAMES, FEATURE_SETS, feature_names
from models.table import METADATA_KEY as _METADATA_KEY
from pipeline.errors import TableError
from pipeline.table.weights import WEIGHT_COLUMNS

PROVENANCE_COLUMNS: tuple[str, ...] = (
    "lst_composite",
    "lst_days_stale",
    "et_composite",
    "et_days_stale",
    "ndvi_composite",
    "smap_file",
)
SITE_COLUMNS: tuple[str, ...] = ("network", "group", "lat", "lon", "row", "col")
NAME_COLUMNS: tuple[str, ...] = tuple(f"{c}_name" for c in CATEGORICALS)

COLUMNS: tuple[str, ...] = (
    "site_id",
    "date",
    "sm",
    *FEATURE_NAMES,
    *CATEGORICALS,
    *NAME_COLUMNS,
    "split",
    "fold",
    "cv_holdout",
    *WEIGHT_COLUMNS,
    *PROVENANCE_COLUMNS,
    *SITE_COLUMNS,
)

DTYPES: dict[str, str] = {
    "site_id": "str",
    "date": "datetime64[ns]",
    "sm": "float64",
    **dict.fromkeys(FEATURE_NAMES, "float32"),
    **dict.fromkeys(CATEGORICALS, "int16"),
    **dict.fromkeys(NAME_COLUMNS, "str"),
    "split": "str",
    "fold": "int8",
    "cv_holdout": "bool",
    **dict.fromkeys(WEIGHT_COLUMNS, "float64"),
    "lst_composite": "datetime64[ns]",
    "lst_days_stale": "int16",
    "et_composite": "datetime64[ns]",
    "et_days_stale": "int16",
    "ndvi_composite": "datetime64[ns]",
    "smap_file": "str",
    "network": "str",
    "group": "str",
    "lat": "float64",
    "lon": "float64",
    "row": "int64",
    "col": "int64",
}

METADATA_KEY = _METADATA_KEY  # one place: models.table

EXTENDED_COLUMNS: tuple[str, ...] = tuple(
    n for n in feature_names("extended") if n not in FEATURE_NAMES
)
"""Inputs of the ``extended`` feature set beyond the paper's nine: optional columns (all or
none), placed right after the paper's nine so the table's feature order is the set's."""


def columns_of(df: pd.DataFrame) -> tuple[str, ...]:
    """``COLUMNS``, with the extended inputs after the paper's nine when ``df`` has them."""
    if not any(c in df.columns for c in EXTENDED_COLUMNS):
        return COLUMNS
    i = COLUMNS.index(FEATURE_NAMES[-1]) + 1
    return (*COLUMNS[:i], *EXTENDED_COLUMNS, *COLUMNS[i:])


def table_feature_names(df: pd.DataFrame) -> tuple[str, ...]:
    """The feature order of a conformed table: the paper's nine, or the extended set's."""
    return tuple(c for c in columns_of(df) if c in feature_names("extended"))


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``COLUMNS`` in order with the schema dtypes; raises on a missing one."""
    cols = columns_of(df)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise TableError(f"table lacks column(s) {missing}")
    out = df.loc[:, list(cols)].copy()
    dtypes = {**DTYPES, **{c: "float32" for c in cols if c in EXTENDED_COLUMNS}}
    for col, dtype in dtypes.items():
        if dtype == "str":
            out[col] = out[col].where(out[col].notna(), "").astype(str)
        elif str(out[col].dtype) != dtype:
            try:
                out[col] = out[col].astype(np.dtype(dtype))
            except (TypeError, ValueError) as exc:
                raise TableError(f"column {col!r} cannot be stored as {dtype}: {exc}") from exc
    return out.reset_index(drop=True)


def write_table(
    table: pd.DataFrame, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> Path:
    """Write the table as Parquet atomically (temp file + rename) with schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    df = conform(table)
    arrow = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    info = {
        "feature_names": list(table_feature_names(df)),
        "columns": list(df.columns),
        **(metadata or {}),
    }
    meta[METADATA_KEY] = json.dumps(info, default=str).encode("utf-8")
    arrow = arrow.replace_schema_metadata(meta)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        pq.write_table(arrow, tmp, compression="zstd")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by ``write_table``; checks the columns and feature order."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.exists():
        raise TableError(f"{p}: training table not found (run 'smdown table')")
    try:
        arrow = pq.read_table(p)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise TableError(f"{p}: not a readable Parquet file: {exc}") from exc
    meta = (arrow.schema.metadata or {}).get(METADATA_KEY)
    if meta is not None:
        names = json.loads(meta).get("feature_names")
        known = [feature_names(fs) for fs in FEATURE_SETS]
        if names is not None and tuple(names) not in known:
            raise TableError(
                f"{p}: feature order {names} is not that of a feature set "
                f"({', '.join(f'{fs}: {list(feature_names(fs))}' for fs in FEATURE_SETS)})"
            )
    df = arrow.to_pandas()
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TableError(f"{p}: table lacks column(s) {missing}")
    return conform(df)


def table_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``smdown`` metadata dictionary stored with a table (empty when absent)."""
    import pyarrow.parquet as pq

    meta = (pq.read_schema(Path(path)).metadata or {}).get(METADATA_KEY)
    return dict(json.loads(meta)) if meta else {}


def empty_table() -> pd.DataFrame:
    """A zero-row table with every column and dtype of the schema."""
    return pd.DataFrame({c: pd.Series(np.zeros(0), dtype=DTYPES[c]) for c in COLUMNS})
