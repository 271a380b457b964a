"""One declarative description of a store's arrays, rendered as a lazy xarray template.

A ``StoreTemplate`` lists every array of a store (name, dimensions, dtype, fill,
CF attributes, chunks, compression and, for coordinates, the values) and the
store's global attributes. ``to_dataset`` renders it as a lazy ``xarray.Dataset``
(data variables are dask arrays of their fill value, never computed) whose
encoding carries the storage choices; ``write`` writes its metadata and the
small arrays that have values with ``Dataset.to_zarr(compute=False)``: data
chunks are written later by the tasks that own them (``pipeline.cube.write_region``).

The cube (``pipeline.cube.store.cube_template``) and the static stack
(``pipeline.run.static``) are both described this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pipeline.cube.layout import StoreSpec

ZARR_FORMAT = 2
"""Zarr format of the stores: 2, the layout GDAL (3.4 and later) opens with its CRS; the
GDAL 3.10 inside rasterio cannot read zarr-python 3's format 3 (``bytes`` codec, GDAL 3.11)."""


def compressor() -> Any:
    """Blosc zstd level 1 with bit shuffle: deterministic bytes for the same input.

    Measured on a packed 1200 x 1200 tile (benchmarks, BENCHMARKS.md): 8x less
    encode CPU than zstd level 5 with byte shuffle for 9 % more bytes (ratio
    2.24 vs 2.47); lz4 would be 2.5x faster again but 20 % larger than this.
    """
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=1, shuffle=Blosc.BITSHUFFLE)


@dataclass(frozen=True)
class ArraySpec:
    """One array of a store.

    ``fill`` is the Zarr fill value (what a chunk never written reads as; xarray masks
    it in format 2) or None (no fill value: coordinates, status). ``values`` are written
    with the template (coordinates, ``day_status``); arrays without values are left to
    the tasks and read as ``fill`` until written.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    chunks: tuple[int, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    fill: int | float | None = None
    compressed: bool = True
    values: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not len(self.dims) == len(self.shape) == len(self.chunks):
            raise ValueError(
                f"{self.name}: dims {self.dims}, shape {self.shape} and chunks "
                f"{self.chunks} disagree in length"
            )
        if self.values is not None and tuple(np.shape(self.values)) != self.shape:
            raise ValueError(
                f"{self.name}: values of shape {np.shape(self.values)} != {self.shape}"
            )

    def encoding(self) -> dict[str, Any]:
        """xarray's Zarr encoding of the array (chunks, compressor, fill, empty chunks)."""
        return {
            "chunks": self.chunks,
            "compressors": (compressor(),) if self.compressed else None,
            "_FillValue": self.fill,
            "write_empty_chunks": False,
            "dtype": self.dtype,
        }

    def variable(self) -> Any:
        """The lazy ``xarray.Variable``: the values, or a dask array of the fill value."""
        import xarray as xr

        if self.values is not None:
            data: Any = np.asarray(self.values, dtype=self.dtype)
        else:
            import dask.array as da

            fill = 0 if self.fill is None else self.fill
            data = da.full(self.shape, fill, dtype=self.dtype, chunks=self.chunks)
        return xr.Variable(self.dims, data, dict(self.attrs), encoding=self.encoding())


@dataclass(frozen=True)
class StoreTemplate:
    """Every array of a store and its global attributes; ``coords`` are the dimension
    coordinates (the other arrays are data variables)."""

    arrays: tuple[ArraySpec, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ArraySpec:
        for a in self.arrays:
            if a.name == name:
                return a
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arrays)

    def to_dataset(self) -> Any:
        """The lazy ``xarray.Dataset`` of the store (nothing computed)."""
        import xarray as xr

        dims = {d for a in self.arrays for d in a.dims}
        coords = {a.name: a.variable() for a in self.arrays if a.name in dims}
        data = {a.name: a.variable() for a in self.arrays if a.name not in dims}
        return xr.Dataset(data, coords=coords, attrs=dict(self.attrs))

    def write(self, spec: StoreSpec, mode: Literal["w", "w-"] = "w-") -> None:
        """Write the metadata (consolidated) and the arrays that have values."""
        import warnings

        ds = self.to_dataset()
        with warnings.catch_warnings():
            # xarray warns that dask chunks are not written with compute=False: intended.
            warnings.simplefilter("ignore", category=UserWarning)
            ds.to_zarr(
                spec.zarr_store(),
                mode=mode,
                compute=False,
                consolidated=True,
                zarr_format=ZARR_FORMAT,
            )
