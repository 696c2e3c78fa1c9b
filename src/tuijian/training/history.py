"""What a fit leaves behind: one record per epoch and the run's summary."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EpochRecord:
    """What one epoch did: loss, throughput, the validation metric and timings.

    `partial`: the time budget ran out during the epoch, which ended after that batch.
    """

    epoch: int
    loss: float
    train_seconds: float
    samples_per_second: float
    lr: float
    valid: dict[str, float] | None = None
    valid_seconds: float = 0.0
    grad_norm: float | None = None  # largest gradient norm before clipping (with grad_clip)
    extra: dict[str, float] = field(default_factory=dict)  # filled by callbacks
    partial: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values, without empty fields (`partial` only when true)."""
        return {
            k: v
            for k, v in asdict(self).items()
            if v is not None and v != {} and not (k == "partial" and not v)
        }


@dataclass
class TrainingHistory:
    """All epochs of a fit, the best epoch and why training stopped.

    `stopped_by` is one of max_epochs, early_stopping, time_budget, divergence (the loss became
    NaN after a best epoch, which is restored), callback, interrupted.
    `best_epoch` counts from 0, as `EpochRecord.epoch` and the JSON-lines log do.
    """

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_by: str = "max_epochs"
    seconds: float = 0.0  # wall time of the fit (of this process, after a resume)
    # The popularity ranking's validation score: patience counts only once a fit beats it.
    baseline_score: float | None = None

    @property
    def train_seconds(self) -> float:
        return sum(e.train_seconds for e in self.epochs)

    @property
    def valid_seconds(self) -> float:
        return sum(e.valid_seconds for e in self.epochs)

    def summary(self) -> dict[str, Any] | None:
        """How the run trained, for a comparison row: epochs run (a partial one included),
        best epoch and validation score, popularity's score, why it stopped and the median
        training seconds of an epoch; None for a model fitted without epochs."""
        if not self.epochs:
            return None
        best = next((e for e in self.epochs if e.epoch == self.best_epoch), None)
        return {
            "epochs": len(self.epochs),
            "best_epoch": self.best_epoch,
            "stopped_by": self.stopped_by,
            "valid_metric": next(iter(best.valid), None) if best and best.valid else None,
            "best_score": self.best_score,
            "baseline_score": self.baseline_score,
            "partial_epochs": sum(e.partial for e in self.epochs),
            "epoch_seconds": statistics.median(e.train_seconds for e in self.epochs),
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary and per-epoch records as JSON-ready values."""
        return {
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "stopped_by": self.stopped_by,
            "baseline_score": self.baseline_score,
            "seconds": self.seconds,
            "train_seconds": self.train_seconds,
            "valid_seconds": self.valid_seconds,
            "epochs": [e.to_dict() for e in self.epochs],
        }
