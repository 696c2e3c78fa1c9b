"""Training: the Trainer loop shared by every torch model."""

from tuijian.training.history import EpochRecord, TrainingHistory
from tuijian.training.trainer import EpochCallback, Trainer

__all__ = ["EpochCallback", "EpochRecord", "Trainer", "TrainingHistory"]
