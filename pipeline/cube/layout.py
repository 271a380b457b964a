"""The shape of a cube: grid, chunking, time axis; and where stores live (``StoreSpec``).

A cube's time axis starts on 1 January of ``first_year`` and is sized in whole
calendar years (extended by the driver one year at a time, never appended by
workers). Spatial chunks are ``chunk`` x ``chunk`` pixels anchored at the grid
origin; a tile may only write whole chunks (edge chunks end at the grid edge).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grids import Grid
from pipeline.errors import RunError
from pipeline.errors import StoreWriteError as StoreWriteError  # re-exported (pipeline.cube)

EPOCH = dt.date(1970, 1, 1)
"""Origin of the stored time coordinate (int32 ``days since 1970-01-01``)."""


class ChunkAlignmentError(RunError):
    """A region does not cover whole chunks of the store (two tasks could share a chunk)."""


@dataclass(frozen=True)
class StoreSpec:
    """Where a Zarr store lives: a local path or an fsspec URL (s3://...) with its options."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def local_path(self) -> str:
        """The filesystem path of a local store."""
        return self.url[len("file://") :] if self.url.startswith("file://") else self.url

    def fsspec_options(self) -> dict[str, Any]:
        """The storage options given to fsspec: as configured, listings cache off unless set.

        s3fs caches directory listings per filesystem instance, and fsspec shares one
        instance per set of options in a process. A listing cached by the driver
        before the Dask workers wrote their chunks made later reads in that process
        (export, evaluation, a reader's ``xr.open_zarr`` with the same options) take
        those chunks as missing, i.e. fill values. Without the cache every read asks
        the store (S3 has been strongly read-after-write consistent since 2020).
        """
        return {"use_listings_cache": False, **dict(self.storage_options)}

    def zarr_store(self, *, read_only: bool = False) -> Any:
        """A zarr-python 3 store: ``LocalStore`` (atomic renames; a failed write raises
        ``StoreWriteError`` naming the file) locally, ``FsspecStore`` otherwise.

        Only a missing key (``FileNotFoundError``) reads as absent (fill value) from an
        ``FsspecStore``: denied access or a network failure after s3fs's retries
        propagate instead of silently reading fill values.
        """
        if self.is_local:
            from pipeline.cube.dirstore import NamedLocalStore

            return NamedLocalStore(self.local_path, read_only=read_only)
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(
            self.url,
            storage_options=self.fsspec_options(),
            read_only=read_only,
            allowed_exceptions=(FileNotFoundError,),
        )

    def filesystem(self) -> tuple[Any, str]:
        """(fsspec filesystem, path of the store in it)."""
        import fsspec

        opts = self.fsspec_options() if not self.is_local else dict(self.storage_options)
        fs, path = fsspec.core.url_to_fs(self.url, **opts)
        return fs, str(path)

    # -- plain files inside a store (provenance, checksums): not Zarr arrays ------------------
    def has_key(self, key: str) -> bool:
        """Whether the file ``<store>/<key>`` exists."""
        if self.is_local:
            return os.path.isfile(os.path.join(self.local_path, key))
        fs, path = self.filesystem()
        return bool(fs.isfile(f"{path}/{key}"))

    def read_key(self, key: str) -> bytes | None:
        """The bytes of ``<store>/<key>``; None when it does not exist."""
        try:
            if self.is_local:
                with open(os.path.join(self.local_path, key), "rb") as f:
                    return f.read()
            fs, path = self.filesystem()
            return bytes(fs.cat_file(f"{path}/{key}"))
        except FileNotFoundError:
            return None

    def write_key(self, key: str, data: bytes) -> None:
        """Write ``<store>/<key>`` (locally atomic: temporary file, then rename;
        ``StoreWriteError`` names the file when it cannot be written)."""
        if not self.is_local:
            fs, path = self.filesystem()
            fs.pipe_file(f"{path}/{key}", data)
            return
        target = os.path.join(self.local_path, key)
        tmp = f"{target}.{os.getpid()}.partial"
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StoreWriteError(target, f"cannot write: {exc.strerror or exc}") from exc

    def list_keys(self, prefix: str) -> list[str]:
        """Keys (relative to the store) of the files directly under the folder ``prefix``."""
        if self.is_local:
            folder = os.path.join(self.local_path, prefix)
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                return []
            return sorted(f"{prefix}/{n}" for n in names if os.path.isfile(os.path.join(folder, n)))
        fs, path = self.filesystem()
        try:
            found = fs.ls(f"{path}/{prefix}", detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            f"{prefix}/{str(e['name']).rstrip('/').rsplit('/', 1)[-1]}"
            for e in found
            if e.get("type") == "file"
        )

    def child(self, name: str) -> StoreSpec:
        """A sibling path under this URL (``<url>/<name>``) with the same options."""
        return StoreSpec(f"{self.url.rstrip('/')}/{name}", self.storage_options)

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class CubeLayout:
    """Grid, spatial chunk edge (pixels) and first calendar year of a cube."""

    grid: Grid
    chunk: int
    first_year: int

    def __post_init__(self) -> None:
        if self.chunk <= 0:
            raise ValueError(f"chunk must be positive, got {self.chunk}")

    @property
    def spatial_dims(self) -> tuple[str, str]:
        """("lat", "lon") on geographic grids, ("y", "x") on projected ones."""
        return ("lat", "lon") if self.grid.is_geographic else ("y", "x")

    @property
    def chunks(self) -> tuple[int, int, int]:
        """Chunk shape of the (time, row, col) data variables."""
        return (1, min(self.chunk, self.grid.height), min(self.chunk, self.grid.width))

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.first_year, 1, 1)

    def n_times_through(self, year: int) -> int:
        """Length of the time axis when it covers every day up to 31 December ``year``."""
        return (dt.date(year + 1, 1, 1) - self.first_day).days

    def time_index(self, date: dt.date) -> int:
        """Index of ``date`` on the time axis (0 = 1 January ``first_year``)."""
        if date.year < self.first_year:
            raise RunError(
                f"{date.isoformat()} is before the cube's first year {self.first_year} "
                "(output.first_year)"
            )
        return (date - self.first_day).days

    def date_of(self, index: int) -> dt.date:
        return self.first_day + dt.timedelta(days=int(index))

    def check_region(self, row0: int, row1: int, col0: int, col1: int) -> None:
        """Raise ``ChunkAlignmentError`` unless rows/cols [0,1) cover whole chunks only."""
        h, w = self.grid.shape
        c = self.chunk
        problems = []
        if not (0 <= row0 < row1 <= h and 0 <= col0 < col1 <= w):
            problems.append(f"outside the grid {h}x{w}")
        if row0 % c or col0 % c:
            problems.append(f"start ({row0}, {col0}) not a multiple of the chunk {c}")
        if (row1 - row0) % c and row1 != h:
            problems.append(f"row end {row1} neither a chunk boundary nor the grid edge {h}")
        if (col1 - col0) % c and col1 != w:
            problems.append(f"col end {col1} neither a chunk boundary nor the grid edge {w}")
        if problems:
            raise ChunkAlignmentError(
                f"region rows {row0}:{row1}, cols {col0}:{col1}: " + "; ".join(problems)
            )

    def chunk_ids(self, row0: int, row1: int, col0: int, col1: int) -> list[tuple[int, int]]:
        """The (chunk row, chunk col) indices a checked region covers."""
        self.check_region(row0, row1, col0, col1)
        c = self.chunk
        return [
            (i, j) for i in range(row0 // c, -(-row1 // c)) for j in range(col0 // c, -(-col1 // c))
        ]


def assert_disjoint_chunks(layout: CubeLayout, regions: list[tuple[int, int, int, int]]) -> None:
    """Every region covers whole chunks and no chunk belongs to two regions (else raise)."""
    owner: dict[tuple[int, int], int] = {}
    for k, region in enumerate(regions):
        for cid in layout.chunk_ids(*region):
            if cid in owner:
                raise ChunkAlignmentError(
                    f"chunk {cid} is written by region {regions[owner[cid]]} and {region}"
                )
            owner[cid] = k
