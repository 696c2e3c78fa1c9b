"""The contract of torch models: a module, batches and a loss; the Trainer owns the loop."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Literal, Protocol, TypeVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.errors import ConfigError
from tuijian.models.base import ModelConfig, Recommender

# Settings of one training run, not of the model: they moved from the model configs to the
# Trainer (`Trainer(device=...)`, `tuijian train --device`); old keys fail with this pointer.
RUN_SETTINGS: tuple[str, ...] = ("device", "threads", "max_seconds", "precision")
Precision = Literal["fp32", "bf16"]


class TorchConfig(ModelConfig):
    """How every torch model is optimised (the Trainer reads them from here).

    Where and how fast a run goes (device, threads, time budget, precision) is not part of the
    model: those are the Trainer's options (`RUN_SETTINGS`).
    """

    epochs: int = Field(100, ge=1)
    batch_size: int = Field(2048, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0)
    lr_schedule: Literal["none", "cosine", "step"] = "none"
    lr_step_epochs: int = Field(30, ge=1)
    lr_gamma: float = Field(0.5, gt=0)
    grad_clip: float | None = Field(None, gt=0)
    valid_metric: str = "ndcg@10"
    patience: int = Field(10, ge=0)
    eval_every: int = Field(1, ge=1)
    pretrained: str | None = None  # a saved model folder, .npz or .npy to start from


TorchConfigT = TypeVar("TorchConfigT", bound=TorchConfig)


class ModelTrainer(Protocol):
    """What a torch model needs from a trainer: `fit` runs the whole training of `model`."""

    def fit(self, model: TorchRecommender, train: Dataset, valid: Validation | None = None) -> Any:
        """Set the model up (`setup_training`) and train it."""


# Builds the trainer of `fit(train)` called without one. The training package registers it when
# imported (`tuijian/__init__.py` imports it), so models never import training.
_default_trainer: Callable[[], ModelTrainer] | None = None


def set_default_trainer(factory: Callable[[], ModelTrainer]) -> None:
    """Register what `TorchRecommender.fit` uses when no trainer is given."""
    global _default_trainer
    _default_trainer = factory


def check_run_settings(owner: str, keys: Mapping[str, Any] | Any) -> None:
    """Raise ConfigError for a run setting given as a model parameter, saying where it went."""
    for key in keys:
        if key in RUN_SETTINGS:
            flag = key.replace("_", "-")
            raise ConfigError(
                f"{owner}: {key} is a run setting now, not a model parameter: "
                f"Trainer({key}=...) / --{flag}"
            )


class TorchRecommender(Recommender[TorchConfigT]):
    """A Recommender whose parameters live in `module_` and are learned by a `Trainer`.

    Subclasses implement `build_module` (from `users_`, `items_`, `seen_`, so `load` can
    rebuild it), `batches` (one epoch), `compute_loss` and `score`.
    """

    # How `pretrained` sources map onto this module: parameter renames, and which parameters'
    # rows are matched by external id ({"item_emb.weight": "items"}); see models.pretrained.
    pretrained_mapping: ClassVar[dict[str, str] | None] = None
    pretrained_rows: ClassVar[dict[str, str] | None] = None

    # Precisions this model's forward passes support (the Trainer refuses others).
    precisions: ClassVar[tuple[Precision, ...]] = ("fp32",)
    precision_: Precision = "fp32"  # of the fit, set by `setup_training`, saved with the model
    _device: torch.device = torch.device("cpu")

    def __init__(self, config: ModelConfig | dict | None = None, **overrides: Any) -> None:
        check_run_settings(type(self).__name__, overrides)
        if isinstance(config, Mapping):
            check_run_settings(type(self).__name__, config)
        super().__init__(config, **overrides)

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        if trainer is None:
            if _default_trainer is None:
                raise ConfigError("no trainer given and none registered: import tuijian.training")
            trainer = _default_trainer()
        trainer.fit(self, train, valid)
        self.module_.eval()
        self.invalidate_cache()

    def setup_training(self, train: Dataset, device: torch.device, precision: Precision) -> None:
        """Called by the trainer before the first epoch: data, module on `device`, pretrained.

        The trainer seeds torch first, so the module's initial weights follow `config.seed`.
        """
        self._device = torch.device(device)
        self.precision_ = precision
        self.prepare_data(train)
        self.module_ = self.build_module().to(self._device)
        if self.config.pretrained:
            from tuijian.models.pretrained import apply_pretrained

            apply_pretrained(
                self, self.config.pretrained, self.pretrained_mapping, rows=self.pretrained_rows
            )

    @property
    def device(self) -> torch.device:
        """Where the module lives: the trainer's device during a fit, CPU after `load`."""
        return self._device

    def training_state(self) -> dict[str, Any]:
        """Hook: model-specific training counters to checkpoint (ints, floats, tensors).

        What the optimizer, schedule and weights do not hold but the next batches depend on
        (e.g. Mult-VAE's KL-annealing step), so a resumed run equals an uninterrupted one.
        """
        return {}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Hook: restore what `training_state` returned (after `setup_training`)."""
        if state:
            raise ConfigError(f"{type(self).__name__} keeps no training state, got {sorted(state)}")

    def prepare_data(self, train: Dataset) -> None:
        """Hook: precompute what batches need from `train` (called once before training)."""

    @abstractmethod
    def build_module(self) -> nn.Module:
        """The torch module, sized from the fitted vocabularies (and `seen_` where needed)."""

    @abstractmethod
    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[Any]:
        """The training batches of one epoch, drawn with `rng`."""

    @abstractmethod
    def compute_loss(self, batch: Any) -> torch.Tensor:
        """Scalar loss of one batch (the module is in train mode)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Hook called before each epoch (e.g. KL annealing)."""

    def invalidate_cache(self) -> None:
        """Drop anything cached for scoring; called after every optimizer epoch."""

    def n_batch_samples(self, batch: Any) -> int:
        """Samples in a batch, for throughput reports (first dimension of the first tensor)."""
        first = batch[0] if isinstance(batch, tuple | list) else batch
        return int(first.shape[0]) if hasattr(first, "shape") else 1

    # ---- persistence of the module -------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        """The learned fields, the fit's precision and every module tensor as `module.<name>`."""
        state = {**super()._get_state(), "precision_": self.precision_}
        for key, value in self.module_.state_dict().items():
            state[f"module.{key}"] = value.detach().cpu().numpy()
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore the learned fields, then rebuild the module and load its tensors."""
        module_state = {k[len("module.") :]: v for k, v in state.items() if k.startswith("module.")}
        super()._set_state({k: v for k, v in state.items() if not k.startswith("module.")})
        self.precision_ = state.get("precision_", "fp32")  # folders saved before it was recorded
        self.module_ = self.build_module()
        self.module_.load_state_dict({k: torch.from_numpy(v) for k, v in module_state.items()})
        self.module_.to(self.device).eval()
        self.invalidate_cache()
