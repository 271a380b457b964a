"""Errors raised by models/."""

from __future__ import annotations


class ModelError(Exception):
    """A model cannot be trained, exported or loaded."""


class ManifestError(ModelError):
    """A manifest is missing, malformed, or does not match its ONNX files or inputs."""
