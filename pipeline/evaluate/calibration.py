"""Is ``soil_moisture_sd`` calibrated? Coverage on held-out stations and against the truth map.

For a calibrated Gaussian predictive sd, 68.27 % of observations fall within
+-1 sd of the prediction and 95.45 % within +-2 sd; more generally a central
interval of nominal probability q (half-width ``z((1 + q) / 2) * sd``) holds a
fraction q of them. The *reliability diagram* plots the observed fraction
against q for a range of q: the diagonal is calibration, above it the sd is
too wide, below too narrow.

Every figure is given raw (the members' mixture sd) and calibrated (times
the manifest's ``sd_calibration.scale``, what the runtime publishes as
``soil_moisture_sd``). On the validation split the scale was fitted on these
same sites, so the calibrated +-1 sd coverage there is 68.27 % by
construction; the held-out figure is the *cross-fitted* one
(``models.calibration.crossfit_coverage``: each half of the sites calibrated
on the other half). On a CV fold the production scale was fitted on sites
that may be in the fold, so the CV table shows the raw coverage and the
cross-fitted one. Against the truth map the cube's published sd is used as
is.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from models.calibration import coverage, crossfit_coverage

LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6827, 0.8, 0.9, 0.9545, 0.99)
"""Nominal central-interval probabilities of the reliability diagram."""

COVERAGE_COLUMNS: tuple[str, ...] = (
    "model",
    "sd_scale",
    "n_sites",
    "n_days",
    "mean_sd_raw",
    "mean_sd",
    "within_1sd_raw",
    "within_2sd_raw",
    "within_1sd",
    "within_2sd",
    "within_1sd_crossfit",
    "within_2sd_crossfit",
)


def coverage_table(
    rows: pd.DataFrame,
    models: Mapping[str, tuple[str, str]],
    scales: Mapping[str, float],
    *,
    obs_col: str = "sm",
    seed: int = 0,
) -> pd.DataFrame:
    """Per model: fractions of site-days within +-1 and +-2 sd, raw, calibrated, cross-fitted.

    ``models`` maps a name to its (prediction, calibrated sd) columns; ``scales``
    gives each model's sd factor (raw sd = calibrated sd / scale).
    """
    out = []
    obs = rows[obs_col].to_numpy(np.float64)
    sites = rows["site_id"].to_numpy()
    for name, (pcol, scol) in models.items():
        scale = float(scales.get(name, 1.0))
        mean = rows[pcol].to_numpy(np.float64)
        sd = rows[scol].to_numpy(np.float64)
        raw = sd / scale
        ok = np.isfinite(obs) & np.isfinite(mean) & np.isfinite(sd)
        cross = crossfit_coverage(obs[ok], mean[ok], raw[ok], sites[ok], seed=seed)
        out.append(
            {
                "model": name,
                "sd_scale": scale,
                "n_sites": int(pd.unique(sites[ok]).size),
                "n_days": int(ok.sum()),
                "mean_sd_raw": float(np.mean(raw[ok])) if ok.any() else float("nan"),
                "mean_sd": float(np.mean(sd[ok])) if ok.any() else float("nan"),
                "within_1sd_raw": coverage(obs, mean, raw, 1.0),
                "within_2sd_raw": coverage(obs, mean, raw, 2.0),
                "within_1sd": coverage(obs, mean, sd, 1.0),
                "within_2sd": coverage(obs, mean, sd, 2.0),
                "within_1sd_crossfit": cross["coverage_1sd_crossfit"],
                "within_2sd_crossfit": cross["coverage_2sd_crossfit"],
            }
        )
    return pd.DataFrame(out, columns=list(COVERAGE_COLUMNS))


def reliability_table(
    rows: pd.DataFrame,
    models: Mapping[str, tuple[str, str]],
    scales: Mapping[str, float],
    *,
    obs_col: str = "sm",
    levels: tuple[float, ...] = LEVELS,
) -> pd.DataFrame:
    """Observed fraction inside each nominal central interval: model, kind (raw/calibrated), q."""
    obs = rows[obs_col].to_numpy(np.float64)
    out = []
    for name, (pcol, scol) in models.items():
        scale = float(scales.get(name, 1.0))
        mean = rows[pcol].to_numpy(np.float64)
        sd = rows[scol].to_numpy(np.float64)
        for kind, s in (("raw", sd / scale), ("calibrated", sd)):
            for q in levels:
                k = float(stats.norm.ppf(0.5 + q / 2))
                out.append(
                    {"model": name, "sd": kind, "nominal": q, "observed": coverage(obs, mean, s, k)}
                )
    return pd.DataFrame(out, columns=["model", "sd", "nominal", "observed"])


def reliability_figure(table: pd.DataFrame, title: str = "") -> bytes:
    """The reliability diagram (observed vs nominal central-interval coverage) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 5.0), dpi=100)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, label="calibrated")
    for (name, kind), g in table.groupby(["model", "sd"], sort=False):
        style = "--" if kind == "raw" else "-"
        ax.plot(g["nominal"], g["observed"], style, marker="o", ms=3, label=f"{name} ({kind})")
    ax.axvline(0.6827, color="0.85", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal probability of the central interval")
    ax.set_ylabel("observed fraction inside")
    ax.set_title(title or "Reliability of soil_moisture_sd")
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def map_coverage(
    world: str | Path,
    cube: str | Path,
    *,
    storage_options: Mapping[str, Any] | None = None,
    levels: tuple[float, ...] = LEVELS,
) -> pd.DataFrame:
    """Fraction of pixel-days of the cube whose truth lies in each central sd interval.

    Reads ``<world>/truth/soil_moisture_90m.zarr`` and the cube's
    ``soil_moisture`` and ``soil_moisture_sd`` one day at a time on the days
    both have. Columns: nominal, observed, n_pixel_days; no row when the cube
    has no ``soil_moisture_sd``.
    """
    from pipeline.evaluate.truth import TruthError, _open_cube, _open_var, _spatial_dims

    world = Path(world)
    truth_path = world / "truth" / "soil_moisture_90m.zarr"
    if not truth_path.exists():
        raise TruthError(truth_path, "no synthetic truth here (is this a synthetic world?)")
    truth = _open_var(truth_path, ("soil_moisture", "sm", "truth"))
    ds = _open_cube(cube, storage_options)
    if "soil_moisture" not in ds.data_vars:
        raise TruthError(cube, f"no 'soil_moisture' variable (have {list(ds.data_vars)})")
    if "soil_moisture_sd" not in ds.data_vars:
        return pd.DataFrame(columns=["nominal", "observed", "n_pixel_days"])
    ydim, xdim = _spatial_dims(truth)
    truth = truth.transpose("time", ydim, xdim)
    times = np.intersect1d(truth["time"].values, ds["time"].values)
    if times.size == 0:
        raise TruthError(cube, f"no day in common with the truth {truth_path}")
    lat = truth[ydim].values
    tol = 0.25 * float(np.min(np.abs(np.diff(lat)))) if lat.size > 1 else 1e-6
    fields = []
    for var in ("soil_moisture", "soil_moisture_sd"):
        f = ds[var]
        fy, fx = _spatial_dims(f)
        f = f.rename({fy: ydim, fx: xdim}).transpose("time", ydim, xdim).sel(time=times)
        fields.append(
            f.reindex({ydim: truth[ydim], xdim: truth[xdim]}, method="nearest", tolerance=tol)
        )
    ks = np.array([stats.norm.ppf(0.5 + q / 2) for q in levels])
    hits = np.zeros(len(levels), np.int64)
    n = 0
    truth = truth.sel(time=times)
    for t in range(times.size):
        y = np.asarray(truth.isel(time=t).values, np.float64).ravel()
        m = np.asarray(fields[0].isel(time=t).values, np.float64).ravel()
        s = np.asarray(fields[1].isel(time=t).values, np.float64).ravel()
        ok = np.isfinite(y) & np.isfinite(m) & np.isfinite(s) & (s > 0)
        z = np.abs(y[ok] - m[ok]) / s[ok]
        hits += (z[None, :] <= ks[:, None]).sum(axis=1)
        n += int(z.size)
    observed = hits / n if n else np.full(len(levels), np.nan)
    return pd.DataFrame({"nominal": list(levels), "observed": observed, "n_pixel_days": n})
