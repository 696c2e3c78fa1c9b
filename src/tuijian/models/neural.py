"""The contract of torch models: a module, batches and a loss; the Trainer owns the loop."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.models.base import ModelConfig, Recommender


class TorchConfig(ModelConfig):
    """Training settings shared by every torch model (the Trainer reads them from here)."""

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
    max_seconds: float | None = Field(None, gt=0)
    threads: int | None = Field(None, ge=1)
    device: str = "cpu"
    pretrained: str | None = None  # a saved model folder, .npz or .npy to start from


class TorchRecommender(Recommender):
    """A Recommender whose parameters live in `module_` and are learned by a `Trainer`.

    Subclasses implement `build_module` (from `users_`, `items_`, `seen_`, so `load` can
    rebuild it), `batches` (one epoch), `compute_loss` and `score`.
    """

    config_class = TorchConfig
    config: TorchConfig
    # How `pretrained` sources map onto this module: parameter renames, and which parameters'
    # rows are matched by external id ({"item_emb.weight": "items"}); see nn.init.
    pretrained_mapping: ClassVar[dict[str, str] | None] = None
    pretrained_rows: ClassVar[dict[str, str] | None] = None

    def _fit(self, train: Dataset, *, valid: Dataset | None, trainer: Any) -> None:
        from tuijian.training import Trainer

        torch.manual_seed(self.config.seed)
        self.prepare_data(train)
        self.module_ = self.build_module().to(self.device)
        if self.config.pretrained:
            from tuijian.nn.init import apply_pretrained

            apply_pretrained(
                self, self.config.pretrained, self.pretrained_mapping, rows=self.pretrained_rows
            )
        (trainer or Trainer(progress=False)).fit(self, train, valid)
        self.module_.eval()
        self.invalidate_cache()

    @property
    def device(self) -> torch.device:
        return torch.device(self.config.device)

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
        state = super()._get_state()
        for key, value in self.module_.state_dict().items():
            state[f"module.{key}"] = value.detach().cpu().numpy()
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        module_state = {k[len("module.") :]: v for k, v in state.items() if k.startswith("module.")}
        super()._set_state({k: v for k, v in state.items() if not k.startswith("module.")})
        self.module_ = self.build_module()
        self.module_.load_state_dict({k: torch.from_numpy(v) for k, v in module_state.items()})
        self.module_.to(self.device).eval()
        self.invalidate_cache()
