"""How the cube stores its values: packed integers, fill values, quality bits, day status.

The three continuous variables (``soil_moisture``, ``soil_moisture_sd``,
``member_spread``, all m3 m-3) are stored as uint16 with ``scale_factor``
1e-4 and ``add_offset`` 0 (resolution 0.0001 m3 m-3, range 0..6.5534; a
value above is clipped) and ``_FillValue`` 65535. Packing is a pure function:
the same float32 input always gives the same bytes, which is what makes a
re-run of a day rewrite identical chunks.

``quality_flag`` is uint8 with CF ``flag_masks``/``flag_meanings``; 255 is its
``_FillValue`` (pixel not computed: outside every tile that holds land).

Provenance of the inputs, per pixel (``pipeline.run.fallback`` fills them):
``smap_age_days`` uint8, the age in days of the SMAP retrieval that served the
pixel (0 the day's own, 255 ``_FillValue``: no SMAP within the allowed age, or
not computed); ``input_fallback`` uint8 CF flag field (``FALLBACK_BITS``), which
fallback level served each input, 0 when every input is the first choice, 255
``_FillValue`` where not computed.
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

# Fallback bits (CF flag_masks of ``input_fallback``): order fixed, part of the store contract.
FALLBACK_BITS: Final[dict[str, int]] = {
    "smap_earlier": 1,
    "lst_composite": 2,
    "lst_earlier": 4,
    "ndvi_earlier": 8,
    "et_earlier": 16,
}
FALLBACK_MEANINGS: Final[dict[str, str]] = {
    "smap_earlier": "SMAP from an earlier day's retrieval (its age in smap_age_days)",
    "lst_composite": "LST from the 8-day composite: the daily LST is missing at the pixel",
    "lst_earlier": "LST from an earlier composite than the one serving the day",
    "ndvi_earlier": "NDVI from an earlier composite than the one serving the day",
    "et_earlier": "ET from an earlier composite than the one serving the day",
}
FILL_AGE: Final = 255
FILL_FALLBACK: Final = 255

# day_status codes.
DAY_ABSENT: Final = 0
DAY_PROVISIONAL: Final = 1
DAY_FINAL: Final = 2
DAY_STATUS_MEANINGS: Final = "absent provisional final"

CONTINUOUS: Final[tuple[str, ...]] = ("soil_moisture", "soil_moisture_sd", "member_spread")
PROVENANCE_VARS: Final[tuple[str, ...]] = ("smap_age_days", "input_fallback")
DATA_VARS: Final[tuple[str, ...]] = (*CONTINUOUS, "quality_flag", *PROVENANCE_VARS)

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
    if name == "smap_age_days":
        return {
            "long_name": "age of the SMAP retrieval that served the pixel",
            "units": "day",
            "valid_range": [0, FILL_AGE - 1],
            "grid_mapping": grid_mapping,
            "coverage_content_type": "auxiliaryInformation",
            "comment": "0: the day's own retrieval; 255 (_FillValue): no SMAP within "
            "[sources] smap_max_age_days, or pixel not computed",
        }
    if name == "input_fallback":
        return {
            "long_name": "fallback level that served each input of the pixel",
            "units": "1",
            "flag_masks": list(FALLBACK_BITS.values()),
            "flag_meanings": " ".join(FALLBACK_BITS),
            "valid_range": [0, sum(FALLBACK_BITS.values())],
            "grid_mapping": grid_mapping,
            "coverage_content_type": "auxiliaryInformation",
            "comment": "0: every input from its first choice; 255 (_FillValue): pixel not "
            "computed. " + "; ".join(f"{k}: {v}" for k, v in FALLBACK_MEANINGS.items()),
        }
    raise KeyError(f"not a data variable of the cube: {name!r}")


def dtype_of(name: str) -> np.dtype[Any]:
    """Stored dtype of a data variable."""
    return np.dtype(np.uint16) if name in CONTINUOUS else np.dtype(np.uint8)


def fill_of(name: str) -> int:
    """Stored fill value of a data variable."""
    if name in CONTINUOUS:
        return FILL_U16
    return {"smap_age_days": FILL_AGE, "input_fallback": FILL_FALLBACK}.get(name, FILL_FLAG)


def encode_tile(
    mean: np.ndarray,
    sd: np.ndarray,
    spread: np.ndarray,
    flags: np.ndarray,
    smap_age: np.ndarray | None = None,
    fallback: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Pack one tile's float outputs (m3 m-3, NaN = not predicted) and flag bits for writing.

    ``smap_age`` (days, uint8, 255 none) and ``fallback`` (``FALLBACK_BITS``) default to
    "no SMAP age known" (255) and "every input from its first choice" (0) on computed
    pixels; both are 255 where ``flags`` is 255 (not computed).
    """
    f = np.asarray(flags, dtype=np.uint8)
    not_computed = f == FILL_FLAG
    age = (
        np.full(f.shape, FILL_AGE, dtype=np.uint8)
        if smap_age is None
        else np.asarray(smap_age, dtype=np.uint8).copy()
    )
    fb = (
        np.zeros(f.shape, dtype=np.uint8)
        if fallback is None
        else np.asarray(fallback, dtype=np.uint8).copy()
    )
    age[not_computed] = FILL_AGE
    fb[not_computed] = FILL_FALLBACK
    return {
        "soil_moisture": pack_u16(mean),
        "soil_moisture_sd": pack_u16(sd),
        "member_spread": pack_u16(spread),
        "quality_flag": f,
        "smap_age_days": age,
        "input_fallback": fb,
    }


def decode_fallback(fallback: np.ndarray) -> Mapping[str, np.ndarray]:
    """uint8 ``input_fallback`` -> {meaning: bool array}; fill (255) pixels read False."""
    f = np.asarray(fallback, dtype=np.uint8)
    computed = f != FILL_FALLBACK
    return {name: ((f & bit) != 0) & computed for name, bit in FALLBACK_BITS.items()}


def decode_flags(flags: np.ndarray) -> Mapping[str, np.ndarray]:
    """uint8 flags -> {meaning: bool array}; fill (255) pixels read False everywhere."""
    f = np.asarray(flags, dtype=np.uint8)
    computed = f != FILL_FLAG
    return {name: ((f & bit) != 0) & computed for name, bit in FLAG_BITS.items()}
