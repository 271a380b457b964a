"""The published Zarr cube: layout, CF encoding, template, region writes, day status, locks.

See ``pipeline.cube.store`` for the on-disk layout (one store per model version).
"""

from pipeline.cube.encoding import (
    DAY_ABSENT,
    DAY_FINAL,
    DAY_PROVISIONAL,
    FALLBACK_BITS,
    FLAG_BITS,
    encode_tile,
    pack_u16,
    unpack_u16,
)
from pipeline.cube.layout import (
    ChunkAlignmentError,
    CubeLayout,
    StoreSpec,
    StoreWriteError,
    assert_disjoint_chunks,
)
from pipeline.cube.lock import LockHeldError, hold_lock, lock_path
from pipeline.cube.store import (
    Cube,
    ModelInfo,
    open_cube,
    read_layout,
    software_version,
    store_name,
    structure_differences,
    write_region,
)

__all__ = [
    "DAY_ABSENT",
    "DAY_FINAL",
    "DAY_PROVISIONAL",
    "FALLBACK_BITS",
    "FLAG_BITS",
    "ChunkAlignmentError",
    "Cube",
    "CubeLayout",
    "LockHeldError",
    "ModelInfo",
    "StoreSpec",
    "StoreWriteError",
    "assert_disjoint_chunks",
    "encode_tile",
    "hold_lock",
    "lock_path",
    "open_cube",
    "pack_u16",
    "read_layout",
    "software_version",
    "store_name",
    "structure_differences",
    "unpack_u16",
    "write_region",
]
