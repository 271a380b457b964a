"""``manifest.json``: what a trained ensemble is, and the checks made before it is used.

The manifest sits beside the ONNX files of one ensemble. Loading it verifies
the sha256 of every ONNX file it names and the feature order against the
order of its ``feature_set`` (``models.features.feature_names``; or an expected
list), and refuses any mismatch with ``ManifestError`` naming the file or field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from models.errors import ManifestError
from models.features import DEFAULT_FEATURE_SET, FeatureSet, feature_names, features_of

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
Arch = Literal["dense", "prob", "wdl", "rf"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnnxFile(_Frozen):
    """One ONNX file beside the manifest and its sha256."""

    file: str
    sha256: str


class Member(_Frozen):
    """One ensemble member: its ONNX file and how it was trained.

    ``weight_variable`` is the sample-weight variable (one of
    ``WEIGHT_VARIABLES``) for networks; for forests it is ``None`` and
    ``texture_class`` names the class the forest was trained on.
    ``onnx_parity`` is the largest |ONNX - native| seen at export (m3 m-3).
    """

    name: str
    onnx: OnnxFile
    weight_variable: str | None = None
    texture_class: int | None = None
    seed: int
    n_params: int
    n_train_rows: int
    epochs_run: int | None = None
    best_inner_loss: float | None = None
    onnx_parity: float | None = None
    train_seconds: float


class Normalisation(_Frozen):
    """Input standardisation baked into the network graphs: (x - mean) / std per feature."""

    mean: list[float]
    std: list[float]


class Manifest(_Frozen):
    """Everything needed to use, verify and reproduce one trained ensemble."""

    schema_version: int = SCHEMA_VERSION
    arch: Arch
    members: list[Member]
    fused: OnnxFile | None = None
    feature_set: FeatureSet = DEFAULT_FEATURE_SET
    feature_names: list[str]
    feature_units: list[str]
    categoricals: list[str] = []
    inputs: list[str] = ["x"]
    outputs: list[str] = ["loc", "scale"]
    normalisation: Normalisation | None = None
    table_hash: str | None = None
    family: str | None = None
    """Product family of the inputs the ensemble was trained on (None: not recorded)."""
    products: dict[str, str] = {}
    """{variable: product} of the training table (``[sources] family``'s training mode)."""
    split_seed: int
    rows: str
    inner_split: dict[str, Any] = {}
    validation_metrics: dict[str, float] = {}
    architecture: dict[str, Any] = {}
    package_versions: dict[str, str] = {}
    runtime: dict[str, Any] = {}
    created: str

    # -- provenance -------------------------------------------------------------------
    @property
    def manifest_hash(self) -> str:
        """sha256 of the canonical JSON of this manifest (provenance and cache key)."""
        text = json.dumps(self.dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def dump(self) -> dict[str, Any]:
        """The JSON form; ``feature_set`` is left out when it is the default ``paper``, so a
        paper model's manifest (and its hash, which names its cube) is as before the key."""
        data = self.model_dump(mode="json")
        if data.get("feature_set") == DEFAULT_FEATURE_SET:
            del data["feature_set"]
        return data

    def onnx_files(self) -> list[OnnxFile]:
        """Every ONNX file this manifest names (members, then the fused graph)."""
        return [m.onnx for m in self.members] + ([self.fused] if self.fused else [])

    # -- I/O --------------------------------------------------------------------------
    def write(self, model_dir: Path) -> Path:
        """Write ``manifest.json`` into ``model_dir`` (atomically, by rename)."""
        path = Path(model_dir) / MANIFEST_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.dump(), indent=2) + "\n", "utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, model_dir: Path) -> Manifest:
        """Parse ``manifest.json`` without verifying the files (see ``load``)."""
        path = Path(model_dir) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError as exc:
            raise ManifestError(f"{path}: manifest not found") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path}: not readable JSON: {exc}") from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or "<root>"
            raise ManifestError(f"{path}: field '{key}': {first['msg']}") from exc

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        expected_features: Sequence[str] | None = None,
        verify: bool = True,
    ) -> Manifest:
        """Read and check a manifest: feature order, and (``verify``) every ONNX file's sha256.

        The runtime passes ``verify=False`` and hashes the bytes it hands to
        onnxruntime instead, so each file is read once.
        """
        model_dir = Path(model_dir)
        manifest = cls.read(model_dir)
        path = model_dir / MANIFEST_NAME
        if manifest.schema_version != SCHEMA_VERSION:
            raise ManifestError(
                f"{path}: schema_version {manifest.schema_version}, this smdown reads "
                f"{SCHEMA_VERSION}"
            )
        want = (
            list(expected_features)
            if expected_features is not None
            else list(feature_names(manifest.feature_set))
        )
        if manifest.feature_names != want:
            raise ManifestError(
                f"{path}: field 'feature_names' is {manifest.feature_names}, expected {want}: "
                "the model was trained on another feature order"
            )
        if not manifest.members:
            raise ManifestError(f"{path}: field 'members' is empty")
        for entry in manifest.onnx_files():
            if Path(entry.file).is_absolute() or ".." in Path(entry.file).parts:
                raise ManifestError(f"{path}: file {entry.file!r} is not beside the manifest")
            if verify:
                verify_file(model_dir, entry)
        return manifest


def verify_file(model_dir: Path, entry: OnnxFile) -> Path:
    """Check that an ONNX file exists beside the manifest and has the recorded sha256."""
    path = Path(model_dir) / entry.file
    if Path(entry.file).is_absolute() or ".." in Path(entry.file).parts:
        raise ManifestError(f"{model_dir / MANIFEST_NAME}: file {entry.file!r} is not beside it")
    if not path.is_file():
        raise ManifestError(f"{path}: ONNX file named in the manifest is missing")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise ManifestError(
            f"{path}: sha256 {digest[:12]}... does not match the manifest ({entry.sha256[:12]}...);"
            " the file was changed or corrupted after training"
        )
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def onnx_entry(model_dir: Path, file_name: str) -> OnnxFile:
    """The manifest entry of an ONNX file just written into ``model_dir``."""
    return OnnxFile(file=file_name, sha256=sha256_file(Path(model_dir) / file_name))


def feature_units(feature_set: FeatureSet = DEFAULT_FEATURE_SET) -> list[str]:
    """Units of the features in contract order."""
    return [f.unit for f in features_of(feature_set)]


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """Installed versions of the named distributions (missing ones are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
