"""Training: the Trainer loop shared by every torch model."""

from tuijian.training.trainer import EpochRecord, Trainer, TrainingHistory

__all__ = ["EpochRecord", "Trainer", "TrainingHistory"]
