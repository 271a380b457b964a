"""The report's figures (matplotlib, no pyplot state): each function returns PNG bytes.

Figures follow the paper: per-site R densities with quantiles (Fig. 9, 15),
predicted vs measured 2-D histograms (Fig. 6), station time series (Fig. 9),
the head-to-head against SMAP normalised by class abundance (Fig. 13, 17,
18) and the PCA of the sites' statics with failing sites marked (Fig. 14).
Soil moisture axes are m3 m-3.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from pipeline.evaluate.analysis import SitePCA
from pipeline.evaluate.metrics import SMAP, score

QUANTILES: tuple[float, ...] = (0.25, 0.5, 0.75)
SMAP_COLOUR = "0.35"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    return buf.getvalue()


def _colours(names: Sequence[str]) -> dict[str, str]:
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    out = {}
    i = 0
    for n in names:
        if n == SMAP:
            out[n] = SMAP_COLOUR
        else:
            out[n] = palette[i % len(palette)]
            i += 1
    return out


def gaussian_density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of ``values`` on ``grid`` with Scott's bandwidth (sd n^-1/5)."""
    v = np.asarray(values, dtype=np.float64)
    h = v.std(ddof=1) * v.size ** (-0.2)
    z = (grid[:, None] - v[None, :]) / h
    return np.exp(-0.5 * z * z).sum(axis=1) / (v.size * h * np.sqrt(2 * np.pi))


def r_density(sites: pd.DataFrame, title: str = "") -> bytes:
    """Density of per-site R for every model and SMAP, with the 25/50/75% quantiles dashed."""
    models = list(dict.fromkeys(sites["model"]))
    colours = _colours(models)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    grid = np.linspace(-1, 1, 401)
    for name in models:
        r = sites.loc[sites["model"] == name, "r"].dropna().to_numpy()
        if r.size == 0:
            continue
        q = np.quantile(r, QUANTILES)
        label = f"{name} (n={r.size}; q25 {q[0]:.2f}, median {q[1]:.2f}, q75 {q[2]:.2f})"
        if r.size >= 3 and np.ptp(r) > 0:
            dens = gaussian_density(r, grid)
            ax.plot(grid, dens, color=colours[name], label=label)
            top = dens.max()
        else:
            ax.plot(r, np.zeros_like(r), "|", color=colours[name], label=label, ms=12)
            top = 1.0
        for v in q:
            ax.vlines(v, 0, top, color=colours[name], linestyles="dashed", lw=0.8)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("per-site Pearson R")
    ax.set_ylabel("density")
    ax.set_title(title or "Per-site correlation with in-situ soil moisture")
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def scatter_density(rows: pd.DataFrame, models: Mapping[str, str], title: str = "") -> bytes:
    """Predicted vs measured soil moisture (m3 m-3): 2-D histograms, one panel per model + SMAP."""
    compared = {**models, SMAP: "smap"}
    n = len(compared)
    fig = Figure(figsize=(3.2 * n, 3.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    obs = rows["sm"].to_numpy(dtype=np.float64)
    hi = float(np.nanmax([np.nanquantile(obs, 0.999), 0.1])) if len(obs) else 0.6
    edges = np.linspace(0.0, max(hi, 0.1) * 1.05, 61)
    for ax, (name, col) in zip(axes, compared.items(), strict=True):
        pred = rows[col].to_numpy(dtype=np.float64)
        ok = np.isfinite(obs) & np.isfinite(pred)
        if ok.any():
            h, _, _ = np.histogram2d(obs[ok], pred[ok], bins=(edges, edges))
            h = np.ma.masked_equal(h, 0)
            vmax = max(float(h.max()), 1.0)
            ax.pcolormesh(edges, edges, h.T, norm=LogNorm(vmin=1, vmax=vmax), cmap="viridis")
        ax.plot(edges[[0, -1]], edges[[0, -1]], color="k", lw=0.8)
        s = score(obs[ok], pred[ok])
        ax.set_title(f"{name}\nR {s.r:.2f}, ubRMSE {s.ubrmse:.3f}", fontsize=9)
        ax.set_xlabel("in-situ (m3 m-3)")
        ax.set_aspect("equal")
    axes[0].set_ylabel("predicted (m3 m-3)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _png(fig)


def pick_stations(rows: pd.DataFrame, n: int = 3) -> list[str]:
    """The ``n`` sites with the most site-days (ties by id): the time-series examples."""
    counts = rows.groupby("site_id").size().reset_index(name="n")
    counts = counts.sort_values(["n", "site_id"], ascending=[False, True])
    return [str(s) for s in counts["site_id"].head(n)]


def time_series(
    rows: pd.DataFrame,
    model: str,
    mean_col: str,
    sd_col: str | None,
    stations: Sequence[str],
) -> bytes:
    """In-situ, SMAP and the model (mean with a +-1 sd band) at a few stations, m3 m-3."""
    n = max(1, len(stations))
    fig = Figure(figsize=(9, 2.4 * n), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, site in zip(axes, stations, strict=False):
        d = rows[rows["site_id"] == site].sort_values("date")
        t = pd.to_datetime(d["date"]).to_numpy()
        ax.plot(t, d["sm"], color="k", lw=1.0, label="in-situ")
        ax.plot(t, d["smap"], color=SMAP_COLOUR, lw=0, marker=".", ms=3, label=SMAP)
        mu = d[mean_col].to_numpy(dtype=np.float64)
        ax.plot(t, mu, color="tab:blue", lw=1.0, label=model)
        if sd_col is not None and sd_col in d.columns:
            sd = d[sd_col].to_numpy(dtype=np.float64)
            ax.fill_between(t, mu - sd, mu + sd, color="tab:blue", alpha=0.25, lw=0, label="+-1 sd")
        ax.set_ylabel("m3 m-3")
        ax.set_title(str(site), fontsize=9)
    axes[0].legend(fontsize=7, ncol=4, loc="upper right")
    fig.autofmt_xdate()
    return _png(fig)


def head_to_head_bars(h2h: pd.DataFrame) -> bytes:
    """Per class variable: normalised win counts against SMAP (1 = as the class abundance),
    each bar labelled with the class's wins / sites."""
    variables = list(dict.fromkeys(h2h["variable"])) or ["texture"]
    models = list(dict.fromkeys(h2h["model"]))
    colours = _colours(models)
    fig = Figure(figsize=(10, 3.2 * len(variables)), layout="constrained")
    axes = fig.subplots(len(variables), 1, squeeze=False)[:, 0]
    for ax, var in zip(axes, variables, strict=True):
        sub = h2h[h2h["variable"] == var]
        classes = list(dict.fromkeys(sub["class"]))
        x = np.arange(len(classes))
        width = min(0.4, 0.8 / max(1, len(models)))
        for i, m in enumerate(models):
            mine = sub[sub["model"] == m].set_index("class").reindex(classes)
            vals = np.nan_to_num(mine["normalised"].to_numpy(dtype=np.float64))
            ax.bar(x + i * width, vals, width, color=colours[m], label=m)
            # wins / sites of the class above each bar (the ratio is undefined with no win)
            for xi, v, w, n in zip(
                x + i * width, vals, mine["n_wins"], mine["n_sites"], strict=True
            ):
                if pd.notna(n):
                    ax.text(xi, v, f"{int(w)}/{int(n)}", ha="center", va="bottom", fontsize=6)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_ylim(0, max(1.2, float(np.nan_to_num(sub["normalised"].max())) * 1.15))
        ax.set_xticks(
            x + width * (len(models) - 1) / 2, classes, rotation=30, ha="right", fontsize=7
        )
        ax.set_ylabel("wins / expected")
        ax.set_title(f"Sites where the model beats SMAP's ubRMSE, by {var}", fontsize=9)
    axes[0].legend(fontsize=7)
    return _png(fig)


def pca_scatter(pca: SitePCA, failing: Mapping[str, pd.Series]) -> bytes:
    """PC1 vs PC2 of the sites' statics; sites where a model did not beat SMAP are red crosses."""
    n = max(1, len(failing))
    fig = Figure(figsize=(4.2 * n, 4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    ids = pd.Index(pca.site_ids)
    pc2 = pca.scores[:, 1] if pca.scores.shape[1] > 1 else np.zeros(len(ids))
    for ax, (model, fail) in zip(axes, failing.items(), strict=False):
        mask = fail.reindex(ids).fillna(False).to_numpy(dtype=bool)
        ax.scatter(pca.scores[~mask, 0], pc2[~mask], s=12, c="0.6", label="beats SMAP")
        ax.scatter(pca.scores[mask, 0], pc2[mask], s=22, c="tab:red", marker="x", label="does not")
        ax.set_xlabel(f"PC1 ({100 * pca.explained[0]:.0f}%)")
        if len(pca.explained) > 1:
            ax.set_ylabel(f"PC2 ({100 * pca.explained[1]:.0f}%)")
        ax.set_title(f"{model}: {int(mask.sum())} of {len(ids)} sites fail", fontsize=9)
        ax.legend(fontsize=7)
    return _png(fig)
