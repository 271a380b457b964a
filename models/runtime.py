"""The map workers' runtime: a verified ensemble of ONNX sessions (no TensorFlow, no sklearn).

``Ensemble.load(dir)`` reads ``manifest.json``, checks the feature order and
the sha256 of every ONNX file it opens (hashing the very bytes handed to
onnxruntime), and opens each session once per process: a second ``load`` of
the same directory returns the cached object (keyed by the manifest hash,
the directory and the thread count). Inside Dask workers keep
``intra_op_threads=1`` and let Dask parallelise over blocks.

By default (``mode="auto"``) the fused graph (all members and the combination
in one session run) is used when the manifest has one and its
``runtime.default_mode`` says so; ``mode="members"`` runs the member
files one by one and combines them with ``models.ensemble.combine_members``.
Both give the same figures (tests/test_models_runtime.py). A Dense ensemble with one
intra-op thread runs instead as ``mode="kernel"``: ``models.densekernel``, a numba pass
that reproduces the fused graph's float32 arithmetic (about 4x faster), used only after
it gave the fused session's exact bits on probe rows when the ensemble was opened
(otherwise the fused graph runs). ``mode="fused"`` forces the ONNX graph. An ``Ensemble``
pickles by reference (directory + manifest hash), so handing it to Dask
tasks ships a few bytes and each worker opens the sessions once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnx
import onnxruntime as ort

from models.calibration import sd_scale
from models.ensemble import combine_members
from models.errors import ManifestError, ModelError
from models.features import CATEGORICALS
from models.manifest import Manifest, OnnxFile

if TYPE_CHECKING:
    from models.densekernel import DenseKernel

Mode = Literal["auto", "fused", "members", "kernel"]
DEFAULT_BATCH_ROWS = 65536

_CACHE: dict[tuple[str, str, int, str], Ensemble] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class EnsemblePrediction:
    """Ensemble output per row, float32 (n,), m3 m-3: mean, mixture sd, spread of member means."""

    mean: np.ndarray
    sd: np.ndarray
    spread: np.ndarray


def _verified_bytes(model_dir: Path, entry: OnnxFile) -> bytes:
    path = model_dir / entry.file
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: ONNX file named in the manifest is missing") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ManifestError(
            f"{path}: sha256 {digest[:12]}... does not match the manifest ({entry.sha256[:12]}...);"
            " the file was changed or corrupted after training"
        )
    return data


def _session(model_dir: Path, entry: OnnxFile, threads: int) -> ort.InferenceSession:
    path = model_dir / entry.file
    data = _verified_bytes(model_dir, entry)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ManifestError(f"{path}: onnxruntime cannot open it: {exc}") from exc


class Ensemble:
    """A loaded, verified ensemble; thread-safe ``predict`` on float32 (n, 9) blocks."""

    def __init__(
        self,
        manifest: Manifest,
        model_dir: Path,
        *,
        intra_op_threads: int = 1,
        mode: Mode = "auto",
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        self.manifest = manifest
        self.model_dir = Path(model_dir)
        self.batch_rows = int(batch_rows)
        self.intra_op_threads = int(intra_op_threads)
        self._requested_mode: Mode = mode
        if mode == "auto":
            default = manifest.runtime.get("default_mode", "fused")
            use_fused = default == "fused" and manifest.fused is not None
        else:
            use_fused = mode in ("fused", "kernel")
        if use_fused and manifest.fused is None:
            raise ManifestError(f"{model_dir}: mode={mode!r} but the manifest has no fused graph")
        self.mode: Literal["fused", "members", "kernel"] = "fused" if use_fused else "members"
        self.sd_scale = sd_scale(manifest.runtime, Path(model_dir) / "manifest.json")
        self._fused: ort.InferenceSession | None = None
        self._kernel: DenseKernel | None = None
        self.kernel_note = ""
        """Why the Dense kernel is not used (empty when it is, or when it does not apply)."""
        self._members: list[ort.InferenceSession] = []
        if self.mode == "fused" and manifest.fused is not None:
            self._fused = _session(self.model_dir, manifest.fused, intra_op_threads)
            if mode == "kernel" and manifest.arch != "dense":
                raise ModelError(f"{model_dir}: mode='kernel' is for Dense ensembles only")
            if mode in ("auto", "kernel") and manifest.arch == "dense":
                self._kernel = self._open_kernel(strict=mode == "kernel")
                if self._kernel is not None:
                    self.mode = "kernel"
        else:
            self._members = [
                _session(self.model_dir, m.onnx, intra_op_threads) for m in manifest.members
            ]

    def _open_kernel(self, *, strict: bool) -> DenseKernel | None:
        """The Dense kernel if it applies here and matches the fused session bit for bit.

        Imported here: numba (~84 MB resident) loads only in processes that serve Dense."""
        from models import densekernel

        why = ""
        if self.intra_op_threads != 1:
            why = f"{self.intra_op_threads} intra-op threads (the kernel matches one)"
        elif not densekernel.HAVE_NUMBA:
            why = "numba is not installed"
        kernel = None
        if not why:
            members = [
                (m.onnx.file, onnx.load_from_string(_verified_bytes(self.model_dir, m.onnx)))
                for m in self.manifest.members
            ]
            try:
                kernel = densekernel.DenseKernel(densekernel.dense_weights(members))
            except ModelError as exc:
                why = str(exc)
        if kernel is not None and self._fused is not None:
            bad = kernel.verify(self._fused)
            if bad:
                why = f"{bad} probe values differ from the fused graph"
                kernel = None
        if why:
            self.kernel_note = why
            if strict:
                raise ModelError(f"{self.model_dir}: mode='kernel' unavailable: {why}")
            return None
        return kernel

    # -- construction -----------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        *,
        intra_op_threads: int = 1,
        mode: Mode = "auto",
        expected_features: Sequence[str] | None = None,
    ) -> Ensemble:
        """Open (once per process) the ensemble in ``model_dir``, verifying hashes and features."""
        model_dir = Path(model_dir).resolve()
        manifest = Manifest.load(model_dir, expected_features=expected_features, verify=False)
        key = (manifest.manifest_hash, str(model_dir), int(intra_op_threads), mode)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is None:
                cached = cls(manifest, model_dir, intra_op_threads=intra_op_threads, mode=mode)
                _CACHE[key] = cached
        return cached

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by reference: a Dask worker re-opens (once, cached) the same verified dir."""
        return (
            _load_by_reference,
            (str(self.model_dir), self.intra_op_threads, self._requested_mode, self.manifest_hash),
        )

    # -- description ------------------------------------------------------------------
    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.manifest.feature_names)

    @property
    def needs_categoricals(self) -> bool:
        """True for WDL: ``predict`` then needs the (n, 3) texture/land cover/Koeppen codes."""
        return "cats" in self.manifest.inputs

    @property
    def n_members(self) -> int:
        return len(self.manifest.members)

    @property
    def manifest_hash(self) -> str:
        return self.manifest.manifest_hash

    def __repr__(self) -> str:
        return (
            f"Ensemble(arch={self.manifest.arch!r}, members={self.n_members}, mode={self.mode!r},"
            f" dir={str(self.model_dir)!r})"
        )

    # -- prediction -------------------------------------------------------------------
    def _inputs(
        self, x: np.ndarray, cats: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        xa = np.asarray(x)
        n_features = len(self.feature_names)
        if xa.ndim != 2 or xa.shape[1] != n_features:
            raise ModelError(f"x must be (n, {n_features}) in {self.feature_names}, got {xa.shape}")
        xa = np.ascontiguousarray(xa, dtype=np.float32)
        valid = np.isfinite(xa).all(axis=1)
        ca: np.ndarray | None = None
        if self.needs_categoricals:
            if cats is None:
                raise ModelError(f"{self.manifest.arch} needs cats (n, 3) codes of {CATEGORICALS}")
            ca = np.asarray(cats)
            if ca.shape != (xa.shape[0], len(CATEGORICALS)):
                raise ModelError(f"cats must be ({xa.shape[0]}, 3), got {ca.shape}")
            if np.issubdtype(ca.dtype, np.floating):
                valid &= np.isfinite(ca).all(axis=1)
                ca = np.where(np.isfinite(ca), ca, 0)
            ca = np.ascontiguousarray(ca, dtype=np.int64)
        return xa, ca, valid

    def _run(self, xa: np.ndarray, ca: np.ndarray | None, names: list[str]) -> list[np.ndarray]:
        if self._kernel is not None:
            out = self._kernel.run(xa)
            return [out[n] for n in names]
        feed: dict[str, Any] = {"x": xa}
        if ca is not None:
            feed["cats"] = ca
        if self._fused is not None:
            return [np.asarray(a) for a in self._fused.run(names, feed)]
        outs = [s.run(["loc", "scale"], feed) for s in self._members]
        loc = np.stack([np.asarray(o[0]) for o in outs])
        scale = np.stack([np.asarray(o[1]) for o in outs])
        got: dict[str, np.ndarray] = {"member_loc": loc.T, "member_scale": scale.T}
        if "mean" in names:
            got["mean"], got["sd"], got["spread"] = combine_members(loc, scale)
        return [got[n] for n in names]

    def _predict(
        self, x: np.ndarray, cats: np.ndarray | None, names: list[str], widths: list[int]
    ) -> list[np.ndarray]:
        xa, ca, valid = self._inputs(x, cats)
        n = xa.shape[0]
        outs = [np.full((n, w) if w else (n,), np.nan, np.float32) for w in widths]
        idx = np.flatnonzero(valid)
        for start in range(0, idx.size, self.batch_rows):
            rows = idx[start : start + self.batch_rows]
            whole = rows.size == n
            xb = xa if whole else xa[rows]
            cb = None if ca is None else (ca if whole else ca[rows])
            for out, got in zip(outs, self._run(xb, cb, names), strict=True):
                out[rows] = got
        return outs

    def predict(self, x: np.ndarray, cats: np.ndarray | None = None) -> EnsemblePrediction:
        """Ensemble mean, mixture sd and member spread (m3 m-3, float32 (n,)).

        Rows with any non-finite input give NaN and are not passed to the model.
        The sd is multiplied by the manifest's calibrated factor when it has one
        (``models.calibration``); member outputs (``predict_members``) are raw.
        """
        mean, sd, spread = self._predict(x, cats, ["mean", "sd", "spread"], [0, 0, 0])
        if self.sd_scale != 1.0:
            sd = (sd * np.float32(self.sd_scale)).astype(np.float32, copy=False)
        return EnsemblePrediction(mean=mean, sd=sd, spread=spread)

    def predict_members(
        self, x: np.ndarray, cats: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Member means and sds, float32 (m, n) each; NaN rows as in ``predict``."""
        m = self.n_members
        loc, scale = self._predict(x, cats, ["member_loc", "member_scale"], [m, m])
        return np.ascontiguousarray(loc.T), np.ascontiguousarray(scale.T)


def _load_by_reference(model_dir: str, threads: int, mode: Mode, expected_hash: str) -> Ensemble:
    ens = Ensemble.load(model_dir, intra_op_threads=threads, mode=mode)
    if ens.manifest_hash != expected_hash:
        raise ManifestError(
            f"{model_dir}: manifest changed since the ensemble was sent to this worker "
            f"({expected_hash[:12]}... -> {ens.manifest_hash[:12]}...)"
        )
    return ens


def clear_cache() -> None:
    """Forget every cached ensemble of this process (tests, or after replacing model files)."""
    with _CACHE_LOCK:
        _CACHE.clear()
