"""Files of an in-situ delivery, from a folder tree or straight from zip archives.

A ``Member`` is one file wherever it lives: a plain file, or an entry of a zip
(possibly a zip inside a walked folder). Nothing is extracted to disk.
"""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.errors import InsituError


@functools.lru_cache(maxsize=8)
def _open_zip(path: Path, mtime_ns: int, size: int) -> zipfile.ZipFile:
    """An open archive, reused: its central directory is parsed once, not per member."""
    return zipfile.ZipFile(path)


def _zip(path: Path) -> zipfile.ZipFile:
    st = path.stat()
    return _open_zip(path, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True, slots=True)
class Member:
    """One file: ``container`` on disk, and ``inner`` (posix path) when it is a zip entry."""

    container: Path
    inner: str | None = None

    @property
    def name(self) -> str:
        """The file's base name."""
        return PurePosixPath(self.inner).name if self.inner else self.container.name

    @property
    def folder(self) -> str:
        """A key of the folder holding the file (static files pair with data files by it)."""
        if self.inner is None:
            return str(self.container.parent)
        return f"{self.container}!{PurePosixPath(self.inner).parent}"

    @property
    def parts(self) -> tuple[str, ...]:
        """Path components inside the delivery (for filtering ancillary folders)."""
        if self.inner is None:
            return self.container.parts
        return (*self.container.parts, *PurePosixPath(self.inner).parts)

    def __str__(self) -> str:
        return f"{self.container}!{self.inner}" if self.inner else str(self.container)

    def read(self) -> bytes:
        """The whole file's bytes; any I/O or zip failure becomes an ``InsituError`` naming it."""
        try:
            if self.inner is None:
                return self.container.read_bytes()
            return _zip(self.container).read(self.inner)
        except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, EOFError) as exc:
            raise InsituError(self, f"cannot read: {exc}") from exc

    def read_head(self, size: int = 65536) -> bytes:
        """The first ``size`` bytes (enough for a header line)."""
        try:
            if self.inner is None:
                with open(self.container, "rb") as fh:
                    return fh.read(size)
            with _zip(self.container).open(self.inner) as fh:
                return fh.read(size)
        except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, EOFError) as exc:
            raise InsituError(self, f"cannot read: {exc}") from exc


def _zip_members(path: Path) -> Iterator[Member]:
    try:
        names = sorted(i.filename for i in _zip(path).infolist() if not i.is_dir())
    except (OSError, zipfile.BadZipFile) as exc:
        raise InsituError(path, f"not a readable zip archive: {exc}") from exc
    for name in names:
        yield Member(path, name)


def iter_members(
    root: str | os.PathLike[str], errors: list[InsituError] | None = None
) -> Iterator[Member]:
    """Every file under ``root`` (a folder, a zip, or one file), zips opened, sorted by path.

    A corrupt zip raises ``InsituError``, or is appended to ``errors`` when a list is given.
    """
    base = Path(root)
    if not base.exists():
        raise InsituError(base, "no such file or folder")
    if base.is_file():
        if zipfile.is_zipfile(base):
            yield from _zip_members(base)
        else:
            yield Member(base)
        return
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            if fname.lower().endswith(".zip"):
                try:
                    yield from _zip_members(path)
                except InsituError as exc:
                    if errors is None:
                        raise
                    errors.append(exc)
            else:
                yield Member(path)
