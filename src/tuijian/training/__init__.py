"""Training: the Trainer loop shared by every torch model, and what one run owns.

Importing this package registers `Trainer(progress=False)` as the trainer of a torch model's
`fit` called without one (`models.neural.set_default_trainer`); `tuijian/__init__.py` imports
it, so `get_model("bpr").fit(train)` works while models never import training.
"""

from tuijian.models.neural import set_default_trainer
from tuijian.training.history import EpochRecord, TrainingHistory
from tuijian.training.run import RunOptions, RunRandom
from tuijian.training.trainer import EpochCallback, Trainer


def _default_trainer() -> Trainer:
    """The trainer of `fit(train)` without one: default run options, no progress bar."""
    return Trainer(progress=False)


set_default_trainer(_default_trainer)

__all__ = ["EpochCallback", "EpochRecord", "RunOptions", "RunRandom", "Trainer", "TrainingHistory"]
