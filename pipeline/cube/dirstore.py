"""A zarr-2 ``DirectoryStore`` whose failed writes name the file (full disk, read-only path).

Imported lazily by ``StoreSpec.zarr_store`` (zarr is not imported with ``pipeline.cube``).
"""

from __future__ import annotations

import os
from typing import Any

import zarr.storage

from pipeline.errors import StoreWriteError


class NamedDirectoryStore(zarr.storage.DirectoryStore):  # type: ignore[misc]
    """``DirectoryStore`` (atomic writes by rename) raising ``StoreWriteError`` on ``OSError``."""

    def __setitem__(self, key: str, value: Any) -> None:
        try:
            super().__setitem__(key, value)
        except OSError as exc:
            path = os.path.join(self.path, str(key))
            raise StoreWriteError(path, f"cannot write: {exc.strerror or exc}") from exc
