"""zarr-python 3 stores of a ``StoreSpec``: a ``LocalStore`` whose failed writes name the file.

Imported lazily by ``StoreSpec.zarr_store`` (zarr is not imported with ``pipeline.cube``).
"""

from __future__ import annotations

from typing import Any

from zarr.storage import LocalStore

from pipeline.errors import StoreWriteError


class NamedLocalStore(LocalStore):
    """``LocalStore`` (atomic writes: temporary file, then rename) raising ``StoreWriteError``
    naming the file on ``OSError`` (full disk, read-only path)."""

    async def _set(self, key: str, value: Any, exclusive: bool = False) -> None:
        try:
            await super()._set(key, value, exclusive=exclusive)
        except FileExistsError:
            raise
        except OSError as exc:
            raise StoreWriteError(
                str(self.root / key), f"cannot write: {exc.strerror or exc}"
            ) from exc

    def set_sync(self, key: str, value: Any) -> None:
        try:
            super().set_sync(key, value)
        except OSError as exc:
            raise StoreWriteError(
                str(self.root / key), f"cannot write: {exc.strerror or exc}"
            ) from exc
