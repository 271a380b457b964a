"""What models/ reads from the training table, and the site-disjoint inner split.

The table (Parquet, written by pipeline/table; accepted here as a DataFrame
too) has one row per (site, day). models/ needs only these columns:

| column | dtype | meaning |
| --- | --- | --- |
| site_id | str | site identifier |
| date | datetime64 | the day |
| sm | float | in-situ daily mean soil moisture, m3 m-3 (the target) |
| smap ... elevation | float32/float64 | the nine inputs, ``models.features.FEATURE_NAMES`` order |
| api ... doy_cos | float32/float64 | the ``extended`` set's added inputs (when present) |
| texture, landcover, koppen | int | static reference codes (``models.features`` tables) |
| split | str | "train" or "validation" (site-disjoint) |
| fold | int | CV fold of the site, 0..9 |
| w_texture ... w_none | float | balanced sample weights, one column per ``WEIGHT_VARIABLES`` |

Other columns are ignored. Rows with a NaN input or target are dropped
before training (counted in the log).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from models.errors import ModelError
from models.features import CATEGORICALS, FEATURE_NAMES, WEIGHT_VARIABLES, feature_names

TARGET = "sm"
WEIGHT_COLUMNS: tuple[str, ...] = tuple(f"w_{v}" for v in WEIGHT_VARIABLES)
REQUIRED_COLUMNS: tuple[str, ...] = (
    "site_id",
    TARGET,
    *FEATURE_NAMES,
    *CATEGORICALS,
    *WEIGHT_COLUMNS,
)

EXTENDED_COLUMNS: tuple[str, ...] = tuple(
    n for n in feature_names("extended") if n not in FEATURE_NAMES
)
"""Inputs of the ``extended`` set beyond the paper's nine (optional columns)."""
METADATA_KEY = b"smdown"
"""Key of the table's JSON metadata in the Parquet schema (written by pipeline/table)."""

RowSelector = Literal["train", "all"] | Callable[[pd.DataFrame], "np.ndarray | pd.Series"]


class TableSchemaError(ModelError):
    """The training table lacks a column models/ needs, or has an unusable value."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


def read_table(path: Path | str) -> pd.DataFrame:
    """Read the Parquet training table (only the columns models/ needs, plus split/fold/date)."""
    p = Path(path)
    if not p.exists():
        raise TableSchemaError(str(p), "training table not found")
    try:
        import pyarrow.parquet as pq

        names = set(pq.read_schema(p).names)
        wanted = [
            c for c in (*REQUIRED_COLUMNS, *EXTENDED_COLUMNS, "date", "split", "fold") if c in names
        ]
        df = pd.read_parquet(p, columns=wanted)
    except (OSError, ValueError) as exc:
        raise TableSchemaError(str(p), f"not a readable Parquet table: {exc}") from exc
    check_table(df, source=str(p))
    return df


def table_inputs(path: Path | str) -> tuple[str | None, dict[str, str]]:
    """(product family, {variable: product}) the table records; (None, {}) when it does not."""
    import json

    import pyarrow.parquet as pq

    try:
        meta = (pq.read_schema(Path(path)).metadata or {}).get(METADATA_KEY)
        info = json.loads(meta) if meta else {}
    except (OSError, ValueError) as exc:
        raise TableSchemaError(str(path), f"unreadable table metadata: {exc}") from exc
    family = info.get("family")
    products = info.get("products") or {}
    return (str(family) if family else None), {str(k): str(v) for k, v in products.items()}


def table_hash(table: pd.DataFrame) -> str:
    """A content hash of the columns models/ uses (order-sensitive), for provenance."""
    cols = [
        c
        for c in (*REQUIRED_COLUMNS, *EXTENDED_COLUMNS, "date", "split", "fold")
        if c in table.columns
    ]
    values = pd.util.hash_pandas_object(table[cols], index=False).to_numpy()
    h = hashlib.sha256(",".join(cols).encode())
    h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def check_table(
    table: pd.DataFrame,
    *,
    source: str = "training table",
    names: tuple[str, ...] = FEATURE_NAMES,
) -> None:
    """Refuse a table without the columns models/ needs (naming the first missing one);
    ``names``: the inputs of the feature set to train."""
    need = (*REQUIRED_COLUMNS, *(n for n in names if n not in REQUIRED_COLUMNS))
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise TableSchemaError(source, f"missing column(s) {missing}")
    if len(table) == 0:
        raise TableSchemaError(source, "table has no rows")


def select_rows(table: pd.DataFrame, rows: RowSelector) -> pd.DataFrame:
    """The rows to train on: ``"train"`` (split == train), ``"all"``, or a callable mask."""
    if callable(rows):
        mask = np.asarray(rows(table), dtype=bool)
        if mask.shape != (len(table),):
            raise TableSchemaError("rows", f"mask has shape {mask.shape}, want ({len(table)},)")
        out = table.loc[mask]
    elif rows == "all":
        out = table
    elif rows == "train":
        if "split" not in table.columns:
            raise TableSchemaError("split", "rows='train' needs a 'split' column")
        out = table.loc[table["split"].astype(str) == "train"]
    else:
        raise TableSchemaError("rows", f"expected 'train', 'all' or a callable, got {rows!r}")
    if len(out) == 0:
        raise TableSchemaError("rows", f"selection {rows!r} leaves no rows")
    return out


def complete_rows(table: pd.DataFrame, names: tuple[str, ...] = FEATURE_NAMES) -> pd.DataFrame:
    """Rows with a finite target, finite inputs (of ``names``) and finite weights."""
    cols = [TARGET, *names, *WEIGHT_COLUMNS]
    ok = np.isfinite(table[cols].to_numpy(dtype=np.float64)).all(axis=1)
    return table.loc[ok]


def features(table: pd.DataFrame, names: tuple[str, ...] = FEATURE_NAMES) -> np.ndarray:
    """The (n, len(names)) float32 input block in ``names`` order (default: the paper's)."""
    return np.ascontiguousarray(table[list(names)].to_numpy(dtype=np.float32))


def categoricals(table: pd.DataFrame) -> np.ndarray:
    """The (n, 3) int64 codes of texture, land cover and Koeppen."""
    return np.ascontiguousarray(table[list(CATEGORICALS)].to_numpy(dtype=np.int64))


def target(table: pd.DataFrame) -> np.ndarray:
    """The target soil moisture, m3 m-3, float32 (n,)."""
    return table[TARGET].to_numpy(dtype=np.float32)


def inner_split(
    sites: np.ndarray | pd.Series, *, seed: int, fraction: float = 0.2
) -> tuple[np.ndarray, frozenset[str]]:
    """Site-disjoint early-stopping split: a row mask of the inner-validation rows and its sites.

    A seeded shuffle of the *sorted* unique site ids, so the result does not
    depend on row order; at least one site on each side when there are two.
    """
    site_arr = np.asarray(sites).astype(str)
    unique = np.array(sorted(set(site_arr.tolist())))
    if len(unique) < 2:
        raise TableSchemaError("site_id", "early stopping needs at least 2 training sites")
    rng = np.random.default_rng(seed)
    n_val = min(len(unique) - 1, max(1, round(fraction * len(unique))))
    chosen = frozenset(rng.permutation(unique)[:n_val].tolist())
    mask = np.isin(site_arr, list(chosen))
    return mask, chosen
