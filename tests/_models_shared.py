"""Trained ensembles shared by the tests/test_models_*.py modules (trained once per process).

Training is the slow part of the models tests, so each small ensemble is
trained once, into a private temporary folder, and reused read-only; tests
that damage files copy the folder first.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

import pandas as pd

from models.manifest import Manifest
from models.synthetic import synthetic_table

_ROOT = Path(tempfile.mkdtemp(prefix="smdown-models-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


@cache
def small_table() -> pd.DataFrame:
    """40 sites x 60 days, 4 texture classes (models.synthetic)."""
    return synthetic_table(n_sites=40, n_days=60, seed=0)


# arch -> (weight variables / members, epochs); forests use 10 trees.
SPECS: dict[str, tuple[tuple[str, ...], int]] = {
    "dense": (("texture", "clay", "none"), 6),
    "prob": (("texture", "none"), 6),
    "wdl": (("texture", "none"), 3),
    "rf": ((), 1),
}


@cache
def trained(arch: str) -> tuple[Path, Manifest]:
    """A small trained ensemble of ``arch`` (its folder must be treated as read-only)."""
    from models.train import train_ensemble

    variables, epochs = SPECS[arch]
    out = _ROOT / arch
    kwargs = {"weight_variables": variables} if variables else {}
    manifest = train_ensemble(
        arch,
        small_table(),
        out,
        seed=3,
        epochs=epochs,
        batch_size=256,
        patience=3,
        n_estimators=10,
        fuse=True,  # forests are not fused by default; the tests cover both paths
        log=lambda _msg: None,
        **kwargs,  # type: ignore[arg-type]
    )
    return out, manifest


def copy_of(arch: str, dest: Path) -> Path:
    """A private copy of a trained ensemble folder (for tests that damage files)."""
    src, _ = trained(arch)
    target = dest / f"{arch}-copy"
    shutil.copytree(src, target)
    return target
