"""How the cube stores its values: packed integers, fill values, quality bits, day status.

The three continuous variables (``soil_moisture``, ``soil_moisture_sd``,
``member_spread``, all m3 m-3) are stored as uint16 with ``scale_factor``
1e-4 and ``add_offset`` 0 (resolution 0.0001 m3 m-3, range 0..6.5534; a
value above is clipped) and ``_FillValue`` 65535. Packing is a pure function:
the same float32 input always gives the same bytes, which is what makes a
re-run of a day rewrite identical chunks.

``quality_flag`` is uint8 with CF ``flag_masks``/``flag_meanings``; 255 is its
``_FillValue`` (pixel not computed: outside every tile that holds land).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from models import variables as _variables

SCALE: Final = 1e-4
"""Packing step of the continuous variables, m3 m-3 per count."""
FILL_U16: Final = 65535
MAX_U16: Final = 65534
FILL_FLAG: Final = 255

# Quality bits (CF flag_masks): order fixed, it is part of the store contract. Which bit
# means what is the variable registry's (models.variables).
FLAG_BITS: Final[dict[str, int]] = _variables.flag_bits()

# day_status codes.
DAY_ABSENT: Final = 0
DAY_PROVISIONAL: Final = 1
DAY_FINAL: Final = 2
DAY_STATUS_MEANINGS: Final = "absent provisional final"

CONTINUOUS: Final[tuple[str, ...]] = ("soil_moisture", "soil_moisture_sd", "member_spread")
DATA_VARS: Final[tuple[str, ...]] = (*CONTINUOUS, "quality_flag")

_LONG_NAMES: Final[dict[str, str]] = {
    "soil_moisture": "volumetric soil moisture, 0-5 cm, ensemble mean",
    "soil_moisture_sd": "predictive standard deviation of soil moisture (ensemble)",
    "member_spread": "standard deviation of the ensemble members' means",
}
_STANDARD_NAMES: Final[dict[str, str]] = {
    "soil_moisture": "volume_fraction_of_condensed_water_in_soil",
}


def pack_u16(values: np.ndarray) -> np.ndarray:
    """Float values (m3 m-3; NaN = missing) -> uint16 counts of 1e-4, 65535 for missing.

    Rounds half to even (numpy ``rint``); negative values clip to 0 and values
    above 6.5534 clip to 65534.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    counts = np.rint(np.where(finite, v, 0.0) / SCALE)
    packed = np.clip(counts, 0, MAX_U16).astype(np.uint16)
    packed[~finite] = FILL_U16
    return packed


def unpack_u16(packed: np.ndarray) -> np.ndarray:
    """uint16 counts -> float32 m3 m-3 with NaN where the fill value is."""
    p = np.asarray(packed)
    out = p.astype(np.float32) * np.float32(SCALE)
    out[p == FILL_U16] = np.nan
    return out


def flag_bits(names: tuple[str, ...] | list[str]) -> int:
    """The OR of the named quality bits (KeyError names an unknown flag)."""
    bits = 0
    for name in names:
        bits |= FLAG_BITS[name]
    return bits


def variable_attrs(name: str, grid_mapping: str = "spatial_ref") -> dict[str, Any]:
    """CF-1.8 attributes of one data variable (without _FillValue, which is the zarr fill)."""
    if name in CONTINUOUS:
        attrs: dict[str, Any] = {
            "long_name": _LONG_NAMES[name],
            "units": "m3 m-3",
            "scale_factor": SCALE,
            "add_offset": 0.0,
            "valid_min": 0,
            "valid_max": MAX_U16,
            "grid_mapping": grid_mapping,
            "coverage_content_type": "modelResult",
        }
        if name in _STANDARD_NAMES:
            attrs["standard_name"] = _STANDARD_NAMES[name]
        return attrs
    if name == "quality_flag":
        return {
            "long_name": "quality flags of the downscaled soil moisture",
            "units": "1",
            "flag_masks": np.array(list(FLAG_BITS.values()), dtype=np.uint8).tolist(),
            "flag_meanings": " ".join(FLAG_BITS),
            "valid_range": [0, sum(FLAG_BITS.values())],
            "grid_mapping": grid_mapping,
            "coverage_content_type": "qualityInformation",
            "comment": "255 (_FillValue): pixel not computed (tile without land)",
        }
    raise KeyError(f"not a data variable of the cube: {name!r}")


def dtype_of(name: str) -> np.dtype[Any]:
    """Stored dtype of a data variable."""
    return np.dtype(np.uint16) if name in CONTINUOUS else np.dtype(np.uint8)


def fill_of(name: str) -> int:
    """Stored fill value of a data variable."""
    return FILL_U16 if name in CONTINUOUS else FILL_FLAG


def encode_tile(
    mean: np.ndarray,
    sd: np.ndarray,
    spread: np.ndarray,
    flags: np.ndarray,
) -> dict[str, np.ndarray]:
    """Pack one tile's float outputs (m3 m-3, NaN = not predicted) and flag bits for writing."""
    return {
        "soil_moisture": pack_u16(mean),
        "soil_moisture_sd": pack_u16(sd),
        "member_spread": pack_u16(spread),
        "quality_flag": np.asarray(flags, dtype=np.uint8),
    }


def decode_flags(flags: np.ndarray) -> Mapping[str, np.ndarray]:
    """uint8 flags -> {meaning: bool array}; fill (255) pixels read False everywhere."""
    f = np.asarray(flags, dtype=np.uint8)
    computed = f != FILL_FLAG
    return {name: ((f & bit) != 0) & computed for name, bit in FLAG_BITS.items()}
