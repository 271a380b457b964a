"""Read a Zarr v2 store as a lazy, CF-decoded ``xarray.Dataset`` through the zarr library.

Why not ``xarray.open_zarr``: the locked xarray (2026.x) drives the zarr-3
API (``zarr_format=``, ``group.metadata``) and fails on zarr 2.18, the
project's pinned Zarr. This reader follows xarray's own v2 convention
(``_ARRAY_DIMENSIONS`` attribute per array, the array's fill value as
``_FillValue``) and lets ``xarray.decode_cf`` apply scale/offset, fills and
CF time units, so packed cubes (uint16 with ``scale_factor``) come back as
floats in physical units. Data stay as dask arrays (one task per Zarr chunk).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import xarray as xr


def open_zarr_v2(store: str | Path | MutableMapping[str, bytes]) -> xr.Dataset:
    """Open the Zarr v2 group at ``store`` (path, URL or mapping) as a decoded Dataset.

    Raises ``FileNotFoundError`` when there is no Zarr group there and
    ``ValueError`` when an array lacks ``_ARRAY_DIMENSIONS``.
    """
    import dask.array as da
    import zarr

    where = str(store) if isinstance(store, str | Path) else "<mapping>"
    try:
        group = zarr.open_group(str(store) if isinstance(store, Path) else store, mode="r")
    except (zarr.errors.GroupNotFoundError, FileNotFoundError, KeyError) as exc:
        raise FileNotFoundError(f"{where}: not a Zarr v2 group") from exc
    arrays = dict(group.arrays())
    dims_of: dict[str, tuple[str, ...]] = {}
    for name, arr in arrays.items():
        dims = arr.attrs.get("_ARRAY_DIMENSIONS")
        if dims is None:
            raise ValueError(f"{where}/{name}: no _ARRAY_DIMENSIONS attribute")
        dims_of[name] = tuple(dims)
    variables: dict[str, xr.Variable] = {}
    for name, arr in arrays.items():
        attrs: dict[str, Any] = {k: v for k, v in arr.attrs.items() if k != "_ARRAY_DIMENSIONS"}
        is_index = dims_of[name] == (name,)
        if arr.fill_value is not None and "_FillValue" not in attrs and not is_index:
            attrs["_FillValue"] = arr.fill_value
        data = arr[...] if is_index else da.from_zarr(arr, name=f"zarr-{where}-{name}")
        variables[name] = xr.Variable(dims_of[name], data, attrs)
    coords = {n: v for n, v in variables.items() if dims_of[n] == (n,)}
    data_vars = {n: v for n, v in variables.items() if n not in coords}
    raw = xr.Dataset(data_vars, coords=coords, attrs=dict(group.attrs))
    return xr.decode_cf(raw)


def write_zarr_v2(ds: xr.Dataset, path: str | Path) -> None:
    """Write a small in-memory Dataset as a Zarr v2 group readable by :func:`open_zarr_v2`.

    For tests and small outputs only (no chunking choices, no encoding of
    floats); CF-encodes times as ``days since 1970-01-01``.
    """
    import numpy as np
    import zarr

    group = zarr.open_group(str(path), mode="w")
    for name, var in {**ds.coords.variables, **ds.data_vars.variables}.items():
        values = np.asarray(var.values)
        attrs = dict(var.attrs)
        if np.issubdtype(values.dtype, np.datetime64):
            days = (values.astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(
                np.int32
            )
            values = days
            attrs.update(units="days since 1970-01-01", calendar="proleptic_gregorian")
        fill = np.nan if np.issubdtype(values.dtype, np.floating) else None
        arr = group.create_dataset(str(name), data=values, fill_value=fill)
        arr.attrs.update({**attrs, "_ARRAY_DIMENSIONS": list(var.dims)})
    group.attrs.update(dict(ds.attrs))
    zarr.consolidate_metadata(str(path))
