"""The model input contract: feature order, units and static categorical references.

The order, units and names come from the variable registry (``models.variables``).

Every model stores this order in its manifest; the runtime refuses a block
whose feature order differs. The order follows the paper (Poehls et al. 2025).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.variables import (
    DEFAULT_FEATURE_SET,
    FEATURE_SETS,
    FeatureSet,
    categorical_names,
    check_feature_set,
    feature_names,
    feature_set_of,
    feature_variables,
)

__all__ = [
    "CATEGORICALS",
    "CATEGORY_TABLES",
    "DEFAULT_FEATURE_SET",
    "FEATURES",
    "FEATURE_NAMES",
    "FEATURE_SETS",
    "IGBP_CLASSES",
    "KOPPEN_CLASSES",
    "N_FEATURES",
    "TEXTURE_CLASSES",
    "WEIGHT_VARIABLES",
    "Feature",
    "FeatureSet",
    "check_feature_set",
    "feature_names",
    "feature_set_of",
    "features_of",
]


@dataclass(frozen=True, slots=True)
class Feature:
    """One model input: its column name, unit and what it is."""

    name: str
    unit: str
    description: str


# The paper's order, units and descriptions, from the variable registry (models.variables).
FEATURES: tuple[Feature, ...] = tuple(
    Feature(v.name, v.unit, v.description) for v in feature_variables()
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
"""The ``paper`` set (the default); ``feature_names(set)`` gives any set's order."""


def features_of(feature_set: FeatureSet) -> tuple[Feature, ...]:
    """The model inputs of ``feature_set`` (``paper``: ``FEATURES``)."""
    return tuple(Feature(v.name, v.unit, v.description) for v in feature_variables(feature_set))


# Static references: sample-weight variables for every model, inputs for WDL only.
# Stored as small integer codes; the code tables are below.
CATEGORICALS: tuple[str, ...] = categorical_names()

# USDA soil texture classes (12), code -> name.
TEXTURE_CLASSES: dict[int, str] = {
    1: "clay",
    2: "silty clay",
    3: "sandy clay",
    4: "clay loam",
    5: "silty clay loam",
    6: "sandy clay loam",
    7: "loam",
    8: "silt loam",
    9: "sandy loam",
    10: "silt",
    11: "loamy sand",
    12: "sand",
}

# MODIS MCD12Q1 LC_Type1 (IGBP), code -> name.
IGBP_CLASSES: dict[int, str] = {
    1: "Evergreen Needleleaf Forests",
    2: "Evergreen Broadleaf Forests",
    3: "Deciduous Needleleaf Forests",
    4: "Deciduous Broadleaf Forests",
    5: "Mixed Forests",
    6: "Closed Shrublands",
    7: "Open Shrublands",
    8: "Woody Savannas",
    9: "Savannas",
    10: "Grasslands",
    11: "Permanent Wetlands",
    12: "Croplands",
    13: "Urban and Built-up Lands",
    14: "Cropland/Natural Vegetation Mosaics",
    15: "Permanent Snow and Ice",
    16: "Barren",
    17: "Water Bodies",
}

# Koeppen-Geiger classes of Beck et al. (2018), code -> symbol.
KOPPEN_CLASSES: dict[int, str] = {
    1: "Af",
    2: "Am",
    3: "Aw",
    4: "BWh",
    5: "BWk",
    6: "BSh",
    7: "BSk",
    8: "Csa",
    9: "Csb",
    10: "Csc",
    11: "Cwa",
    12: "Cwb",
    13: "Cwc",
    14: "Cfa",
    15: "Cfb",
    16: "Cfc",
    17: "Dsa",
    18: "Dsb",
    19: "Dsc",
    20: "Dsd",
    21: "Dwa",
    22: "Dwb",
    23: "Dwc",
    24: "Dwd",
    25: "Dfa",
    26: "Dfb",
    27: "Dfc",
    28: "Dfd",
    29: "ET",
    30: "EF",
}

CATEGORY_TABLES: dict[str, dict[int, str]] = {
    "texture": TEXTURE_CLASSES,
    "landcover": IGBP_CLASSES,
    "koppen": KOPPEN_CLASSES,
}

# The seven sample-weight variables of the Dense/Prob/WDL ensembles (paper 3.1).
WEIGHT_VARIABLES: tuple[str, ...] = ("texture", "clay", "sand", "ph", "koppen", "landcover", "none")
