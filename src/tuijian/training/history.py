"""What a fit leaves behind: one record per epoch and the run's summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EpochRecord:
    """What one epoch did: loss, throughput, the validation metric and timings."""

    epoch: int
    loss: float
    train_seconds: float
    samples_per_second: float
    lr: float
    valid: dict[str, float] | None = None
    valid_seconds: float = 0.0
    grad_norm: float | None = None  # largest gradient norm before clipping (with grad_clip)
    extra: dict[str, float] = field(default_factory=dict)  # filled by callbacks

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values, without empty fields."""
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


@dataclass
class TrainingHistory:
    """All epochs of a fit, the best epoch and why training stopped.

    `stopped_by` is one of max_epochs, early_stopping, time_budget, callback, interrupted.
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
