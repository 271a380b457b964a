"""Honest skill of filled pixels: held-out stations split by SMAP age and by LST source.

The maps fill a pixel from older SMAP retrievals and from LST composites
(``pipeline.run.fallback``); the cube records per pixel which level served
(``smap_age_days``, ``input_fallback``). Here the published days of a cube are
read at the held-out (validation) stations' pixels and scored against the in-situ
daily means of the same days, split by SMAP age (0, 1, 2, 3+ days) and by LST
source (daily, 8-day composite, earlier composite). SMAP is scored on the same
station-days: the retrieval that served the pixel (the day's own at age 0, the
older one otherwise: what a user would have without the map), taken from the
training table's ``smap`` of the site on that day.

``sd_by_age`` fits the extra predictive sd a filled pixel needs: per age a >= 1,
sqrt(max(0, MSE_a - MSE_0)) of the model's errors, added in quadrature to the sd
(``[sources] smap_age_sd``); the tables report the coverage of +-1 sd next to it.
The coverage table counts each published day's land pixels mapped and by SMAP age
from the day's provenance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.cube import FALLBACK_BITS
from pipeline.cube import encoding as enc
from pipeline.evaluate.metrics import score

AGE_GROUPS: tuple[str, ...] = ("0", "1", "2", "3+")
LST_SOURCES: tuple[str, ...] = ("daily", "composite", "earlier composite")


def age_group(age: float) -> str | None:
    """ "0", "1", "2" or "3+" for an age in days (None when no SMAP served)."""
    if not np.isfinite(age) or age >= enc.FILL_AGE:
        return None
    return AGE_GROUPS[min(int(age), 3)]


def lst_source(bits: float) -> str | None:
    """Which LST level served a pixel, from its ``input_fallback`` bits."""
    if not np.isfinite(bits) or bits >= enc.FILL_FALLBACK:
        return None
    b = int(bits)
    if b & FALLBACK_BITS["lst_earlier"]:
        return "earlier composite"
    if b & FALLBACK_BITS["lst_composite"]:
        return "composite"
    return "daily"


def station_days(
    cube: str | Path,
    table: pd.DataFrame,
    insitu: pd.DataFrame,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The cube at the validation stations on its published days, with in-situ and SMAP.

    ``table``: the training table (site_id, date, smap, split, row, col); ``insitu``: the
    in-situ daily table (site_id, date, sm). Columns: site_id, date, sm, pred, sd,
    smap_age, fallback, smap (the serving retrieval), age_group, lst_source.
    """
    from pipeline.cube import open_cube

    val = table[table["split"] == "validation"]
    sites = val.groupby("site_id")[["row", "col"]].first()
    ds = open_cube(str(cube), storage_options)
    status = np.asarray(ds["day_status"].values)
    days = pd.to_datetime(ds["time"].values)[status > 0]
    obs = insitu.assign(
        site_id=insitu["site_id"].astype(str), date=pd.to_datetime(insitu["date"]).dt.normalize()
    )
    obs = obs[obs["site_id"].isin(sites.index) & obs["date"].isin(days)]
    out = obs[["site_id", "date", "sm"]].join(sites, on="site_id").reset_index(drop=True)
    h, w = ds["soil_moisture"].shape[1:]
    r = out["row"].to_numpy(np.int64)
    c = out["col"].to_numpy(np.int64)
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    cols = {
        "pred": "soil_moisture",
        "sd": "soil_moisture_sd",
        "smap_age": "smap_age_days",
        "fallback": "input_fallback",
    }
    for k in cols:
        out[k] = np.nan
    for day in days:
        sel = np.flatnonzero(inside & (out["date"] == day).to_numpy())
        if not sel.size:
            continue
        one = ds.sel(time=day)
        for k, var in cols.items():
            if var in one:
                values = np.asarray(one[var].values, dtype=np.float64)
                out.loc[sel, k] = values[r[sel], c[sel]]
    keyed = table.assign(date=pd.to_datetime(table["date"]).dt.normalize())
    smap = keyed.set_index(["site_id", "date"])["smap"]
    smap = smap[~smap.index.duplicated()]
    served = [
        (s, d - pd.Timedelta(days=int(a))) if np.isfinite(a) and a < enc.FILL_AGE else (s, pd.NaT)
        for s, d, a in zip(out["site_id"], out["date"], out["smap_age"], strict=True)
    ]
    out["smap"] = smap.reindex(pd.MultiIndex.from_tuples(served, names=["site_id", "date"])).values
    out["age_group"] = [age_group(a) for a in out["smap_age"]]
    out["lst_source"] = [lst_source(b) for b in out["fallback"]]
    return out


def _rows(frame: pd.DataFrame, by: str, groups: tuple[str, ...]) -> pd.DataFrame:
    recs = []
    for g in groups:
        part = frame[frame[by] == g]
        both = part[np.isfinite(part["pred"]) & np.isfinite(part["smap"]) & np.isfinite(part["sm"])]
        m = score(both["sm"], both["pred"])
        s = score(both["sm"], both["smap"])
        err = np.abs(both["pred"] - both["sm"])
        recs.append(
            {
                by: g,
                "n": m.n,
                "sites": int(both["site_id"].nunique()),
                "rmse": m.rmse,
                "ubrmse": m.ubrmse,
                "bias": m.bias,
                "r": m.r,
                "smap_rmse": s.rmse,
                "smap_ubrmse": s.ubrmse,
                "smap_r": s.r,
                "mean_sd": float(both["sd"].mean()) if m.n else float("nan"),
                "within_1sd": float((err <= both["sd"]).mean()) if m.n else float("nan"),
            }
        )
    return pd.DataFrame(recs)


def skill_by_age(frame: pd.DataFrame) -> pd.DataFrame:
    """Model and SMAP metrics on the same station-days per SMAP age group."""
    return _rows(frame, "age_group", AGE_GROUPS)


def skill_by_lst(frame: pd.DataFrame) -> pd.DataFrame:
    """Model and SMAP metrics on the same station-days per LST source."""
    return _rows(frame, "lst_source", LST_SOURCES)


def sd_by_age(by_age: pd.DataFrame) -> list[float]:
    """Extra sd (m3 m-3) per age 1, 2, 3+: sqrt(max(0, MSE_a - MSE_0)) (NaN: no pairs)."""
    rmse = dict(zip(by_age["age_group"], by_age["rmse"], strict=True))
    base = rmse.get("0", float("nan"))
    out = []
    for g in AGE_GROUPS[1:]:
        a = rmse.get(g, float("nan"))
        out.append(float(np.sqrt(max(0.0, a * a - base * base))) if np.isfinite(a + base) else a)
    return out


def coverage_table(
    cube: str | Path, storage_options: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Per published day: land pixels, share mapped, shares by SMAP age (provenance)."""
    from pipeline.cube import StoreSpec, read_layout
    from pipeline.cube.store import Cube

    spec = StoreSpec(str(cube), dict(storage_options or {}))
    c = Cube(spec, read_layout(spec))
    recs = []
    for day, st in sorted(c.statuses().items()):
        if not st:
            continue
        prov = c.read_provenance(day) or {}
        n_land = int(prov.get("n_land", 0) or 0)
        rec: dict[str, Any] = {
            "date": day.isoformat() if isinstance(day, dt.date) else str(day),
            "status": int(st),
            "land_pixels": n_land,
            "mapped": float(prov.get("coverage", float("nan"))),
        }
        ages = prov.get("smap_age_pixels", {})
        for g in AGE_GROUPS:
            if g == "3+":
                n = sum(v for k, v in ages.items() if k.isdigit() and int(k) >= 3)
            else:
                n = int(ages.get(g, 0))
            rec[f"smap_age_{g}"] = n / n_land if n_land else float("nan")
        lst = prov.get("fallback_pixels", {}).get("lst", {})
        rec["lst_composite"] = (
            sum(v for k, v in lst.items() if k.startswith("composite")) / n_land
            if n_land
            else float("nan")
        )
        missing = prov.get("missing_pixels", {})
        rec["missing"] = ", ".join(f"{k} {v}" for k, v in sorted(missing.items())) or "-"
        recs.append(rec)
    return pd.DataFrame(recs)


def add_fallback_sections(
    results: Any,
    cube: str | Path,
    table: pd.DataFrame,
    insitu: pd.DataFrame,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The coverage and skill-by-age / by-LST-source tables of a cube (returns the pairs)."""
    frame = station_days(cube, table, insitu, storage_options=storage_options)
    by_age = skill_by_age(frame)
    results.add_table(
        "coverage",
        coverage_table(cube, storage_options),
        "Coverage of each published day: share of land pixels mapped, and by the age (days) "
        "of the SMAP retrieval that served them, LST from a composite; inputs still missing",
    )
    results.add_table(
        "skill_by_smap_age",
        by_age,
        "Held-out stations on the mapped days, by the age of the SMAP retrieval that served "
        "the pixel (days), with SMAP (that retrieval) on the same station-days (m3 m-3)",
    )
    results.add_table(
        "skill_by_lst_source",
        skill_by_lst(frame),
        "Held-out stations on the mapped days, by the LST level that served the pixel, with "
        "SMAP on the same station-days (m3 m-3)",
    )
    results.meta["smap_age_sd_fit"] = sd_by_age(by_age)
    return frame
