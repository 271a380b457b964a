"""Small generated inputs for testing the evaluation without a trained model.

``station_table`` makes a training-table-shaped DataFrame (docs/table-schema.md
columns the evaluation reads) for a few synthetic stations; ``LinearEnsemble``
is a :class:`~pipeline.evaluate.evaluation.Predictor` whose members are fixed
linear maps of the nine features (m3 m-3 out), so tests know what it predicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.features import (
    FEATURE_NAMES,
    IGBP_CLASSES,
    KOPPEN_CLASSES,
    TEXTURE_CLASSES,
    WEIGHT_VARIABLES,
)


def station_table(
    n_sites: int = 24,
    n_days: int = 60,
    *,
    seed: int = 0,
    n_folds: int = 10,
    validation_every: int = 4,
) -> pd.DataFrame:
    """A table of ``n_sites`` x ``n_days`` rows with every column of docs/table-schema.md.

    sm (m3 m-3) = a regional daily signal + a site offset driven by clay and
    NDVI + noise; ``smap`` sees the regional signal, a coarse offset and noise
    but not the site offset. Every ``validation_every``-th site is in the
    validation split; folds are dealt round-robin; classes cycle over three
    textures, two land covers and two Koeppen classes.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-04-01", periods=n_days)
    regional = 0.22 + 0.06 * np.sin(np.arange(n_days) / 9.0)
    textures, covers, climates = (7, 8, 9), (10, 12), (14, 25)
    parts = []
    for s in range(n_sites):
        clay = rng.uniform(5, 45)
        sand = rng.uniform(10, 80)
        ndvi = np.clip(rng.uniform(0.2, 0.8) + rng.normal(0, 0.03, n_days), 0, 1)
        lst = 20 + rng.normal(0, 4, n_days)
        site_offset = 0.003 * (clay - 25) + 0.1 * (ndvi - 0.5)
        # A day-to-day part SMAP misses and the LST feature reveals (drier when warmer).
        sm = regional + site_offset - 0.006 * (lst - 20) + rng.normal(0, 0.015, n_days)
        smap = regional + 0.02 + rng.normal(0, 0.03, n_days)
        tex, lc, kg = textures[s % 3], covers[s % 2], climates[(s // 2) % 2]
        frame = pd.DataFrame(
            {
                "site_id": f"NET{s % 2}:S{s:03d}",
                "date": dates,
                "sm": sm,
                "smap": smap.astype(np.float32),
                "ndvi": ndvi.astype(np.float32),
                "lst": lst.astype(np.float32),
                "precip": rng.gamma(0.4, 5.0, n_days).astype(np.float32),
                "sand": np.float32(sand),
                "clay": np.float32(clay),
                "ph": np.float32(rng.uniform(5, 8)),
                "et": rng.uniform(0.5, 4, n_days).astype(np.float32),
                "elevation": np.float32(rng.uniform(100, 1500)),
                "texture": np.int16(tex),
                "landcover": np.int16(lc),
                "koppen": np.int16(kg),
                "texture_name": TEXTURE_CLASSES[tex],
                "landcover_name": IGBP_CLASSES[lc],
                "koppen_name": KOPPEN_CLASSES[kg],
                "split": "validation" if s % validation_every == 0 else "train",
                "fold": np.int8(s % n_folds),
                "cv_holdout": False,
                "network": f"NET{s % 2}",
                "group": "ismn",
                "lat": 35.0 + 0.1 * s,
                "lon": -97.0 - 0.1 * s,
                "lst_composite": dates,
                "lst_days_stale": np.int16(0),
                "et_composite": dates,
                "et_days_stale": np.int16(0),
                "ndvi_composite": dates,
                "smap_file": "synthetic",
                "row": np.int64(s),
                "col": np.int64(s),
            }
        )
        for v in WEIGHT_VARIABLES:
            frame[f"w_{v}"] = 1.0
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@dataclass
class LinearEnsemble:
    """Members predict ``x @ coef_i + intercept_i`` (m3 m-3) with a constant sd."""

    coefs: np.ndarray
    intercepts: np.ndarray
    sd: float = 0.03
    feature_names: tuple[str, ...] = FEATURE_NAMES
    member_names: tuple[str, ...] = field(default_factory=tuple)
    calls: int = 0

    @classmethod
    def skilful(cls, n_members: int = 3, *, seed: int = 0) -> LinearEnsemble:
        """Members that know the regional signal (SMAP), the site offset and the LST effect."""
        rng = np.random.default_rng(seed)
        base = np.zeros(len(FEATURE_NAMES))
        base[FEATURE_NAMES.index("smap")] = 1.0
        base[FEATURE_NAMES.index("clay")] = 0.003
        base[FEATURE_NAMES.index("ndvi")] = 0.1
        base[FEATURE_NAMES.index("lst")] = -0.006
        coefs = np.stack([base * (1 + rng.normal(0, 0.05)) for _ in range(n_members)])
        intercepts = -0.02 - 0.003 * 25 - 0.05 + 0.12 + rng.normal(0, 0.005, n_members)
        names = tuple(f"w_{v}" for v in WEIGHT_VARIABLES[:n_members])
        return cls(coefs, intercepts, member_names=names)

    def predict_members(
        self, x: np.ndarray, cats: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        xa = np.asarray(x, dtype=np.float64)
        means = self.coefs @ xa.T + self.intercepts[:, None]
        sds = np.full_like(means, self.sd)
        return means.astype(np.float32), sds.astype(np.float32)
