"""Zarr v2 stores for evaluation: the synthetic truth and small test cubes, via xarray.

``open_zarr_v2`` is ``xarray.open_zarr`` (lazy, CF-decoded: packed uint16
with ``scale_factor`` comes back in physical units) with a clear error when
there is no Zarr group at the path; ``write_zarr_v2`` writes a small Dataset
as a consolidated Zarr v2 group (tests and small outputs).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

import xarray as xr


def open_zarr_v2(store: str | Path | MutableMapping[str, bytes]) -> xr.Dataset:
    """Open the Zarr v2 group at ``store`` (path, URL or mapping) as a lazy, decoded Dataset.

    Raises ``FileNotFoundError`` naming the store when there is no Zarr group there.
    """
    where = str(store) if isinstance(store, str | Path) else "<mapping>"
    if isinstance(store, Path | str) and "://" not in str(store) and not Path(store).exists():
        raise FileNotFoundError(f"{where}: not a Zarr v2 group (no such path)")
    target = str(store) if isinstance(store, Path) else store
    try:
        try:
            return xr.open_zarr(target, consolidated=True)
        except (FileNotFoundError, KeyError, ValueError):  # no consolidated metadata
            return xr.open_zarr(target, consolidated=False)
    except (FileNotFoundError, KeyError) as exc:
        raise FileNotFoundError(f"{where}: not a Zarr v2 group") from exc
    except ValueError as exc:
        if "group" in str(exc).lower() or "metadata" in str(exc).lower():
            raise FileNotFoundError(f"{where}: not a Zarr v2 group") from exc
        raise


def write_zarr_v2(ds: xr.Dataset, path: str | Path) -> None:
    """Write a small in-memory Dataset as a consolidated Zarr v2 group (overwriting)."""
    ds.to_zarr(str(path), mode="w", consolidated=True, zarr_format=2)
