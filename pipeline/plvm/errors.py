"""Errors raised by the PLVM model layer (no third-party imports, safe to import anywhere)."""

from __future__ import annotations

from pipeline.errors import MissingWeights, PipelineError


class PlvmError(PipelineError, RuntimeError):
    """Base class for PLVM model-layer errors."""


class MissingWeightsError(PlvmError, MissingWeights):
    """A weight file or hub snapshot is not on this machine; the message names it and the fix."""


class AlignerCheckpointError(PlvmError, ValueError):
    """An Aligner checkpoint does not fit the Aligner module (strict load failed).

    Attributes:
        missing: keys the module expects that the checkpoint lacks.
        unexpected: keys in the checkpoint the module does not have.
        mismatched: (key, expected shape, found shape) for keys present in both.
    """

    def __init__(
        self,
        source: str,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] | None = None,
        detail: str | None = None,
    ) -> None:
        self.source = source
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.mismatched = list(mismatched or [])
        lines = [f"Aligner checkpoint {source} does not fit the Aligner"]
        if detail:
            lines[0] += f": {detail}"
        if self.missing:
            lines.append(f"  missing keys ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected keys ({len(self.unexpected)}): {', '.join(self.unexpected)}")
        for key, expected, found in self.mismatched:
            lines.append(f"  shape mismatch {key}: expected {tuple(expected)}, found {tuple(found)}")
        super().__init__("\n".join(lines))


class ModelDownloadError(PlvmError):
    """``pull_models`` could not fetch a snapshot from the Hugging Face hub."""
