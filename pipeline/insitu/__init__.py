"""In-situ ground truth: ISMN and AmeriFlux readers, quality control, daily means.

Public API::

    read_ismn_file(path_or_bytes, name=...) -> IsmnSeries
    read_static_variables(path_or_bytes, name=...) -> StaticVariables
    read_ameriflux(csv_or_zip, badm=...) -> AmerifluxSite
    read_bif(zip_xlsx_or_csv) -> dict[site_id, BifSite]
    build_insitu(ismn, ameriflux, cfg, *, lst_at_site=None) -> InsituResult
    load_insitu(out) -> InsituResult
    daily_means(times, values, min_obs) -> DataFrame(date, sm, n_obs)
"""

from __future__ import annotations

from pipeline.insitu.ameriflux import (
    AmerifluxSite,
    BifSite,
    SensorColumn,
    read_ameriflux,
    read_bif,
)
from pipeline.insitu.build import (
    DAILY_COLUMNS,
    SITE_COLUMNS,
    InsituResult,
    build_insitu,
    load_insitu,
    output_paths,
)
from pipeline.insitu.daily import daily_means
from pipeline.insitu.ismn import (
    IsmnName,
    IsmnSeries,
    StaticVariables,
    parse_ismn_name,
    read_ismn_file,
    read_ismn_head,
    read_static_variables,
)
from pipeline.insitu.qc import CONUS_BOUNDS, QCReport, QCStep, SkippedFile, in_box

__all__ = [
    "CONUS_BOUNDS",
    "DAILY_COLUMNS",
    "SITE_COLUMNS",
    "AmerifluxSite",
    "BifSite",
    "InsituResult",
    "IsmnName",
    "IsmnSeries",
    "QCReport",
    "QCStep",
    "SensorColumn",
    "SkippedFile",
    "StaticVariables",
    "build_insitu",
    "daily_means",
    "in_box",
    "load_insitu",
    "output_paths",
    "parse_ismn_name",
    "read_ameriflux",
    "read_bif",
    "read_ismn_file",
    "read_ismn_head",
    "read_static_variables",
]
