"""The Trainer: one training loop for every torch model (optimizer, early stopping, logs)."""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tuijian.data.dataset import Dataset
from tuijian.errors import ConfigError
from tuijian.evaluation.evaluate import evaluate_ranking

if TYPE_CHECKING:
    from tuijian.models.neural import TorchConfig, TorchRecommender


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

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class TrainingHistory:
    """All epochs of a fit, the best epoch and why training stopped."""

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_by: str = "max_epochs"

    @property
    def train_seconds(self) -> float:
        return sum(e.train_seconds for e in self.epochs)

    @property
    def valid_seconds(self) -> float:
        return sum(e.valid_seconds for e in self.epochs)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch, numpy and random; return the generator the batches draw from."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def make_optimizer(config: TorchConfig, params: Any) -> torch.optim.Optimizer:
    """SGD (momentum), Adam or AdamW with the configured learning rate and weight decay."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def make_schedule(config: TorchConfig, optimizer: torch.optim.Optimizer) -> Any:
    """The per-epoch learning-rate schedule, or None."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step_epochs, config.lr_gamma)
    return None


def parse_metric(name: str) -> tuple[str, int]:
    """'ndcg@10' -> ('ndcg', 10)."""
    metric, _, k = name.partition("@")
    if not k.isdigit():
        raise ConfigError(f"valid_metric must look like 'ndcg@10', got {name!r}")
    return metric, int(k)


class Trainer:
    """Runs epochs of `model.batches` / `model.compute_loss` with the model config's settings.

    Args:
        log_path: JSON-lines file receiving one record per epoch.
        checkpoint_dir: where the last and best weights are written after each epoch.
        resume: continue from `checkpoint_dir/last.pt` when it exists.
        progress: show a rich progress bar.
    """

    def __init__(
        self,
        *,
        log_path: str | Path | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        self.log_path = Path(log_path) if log_path else None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.resume = resume
        self.progress = progress
        self.history = TrainingHistory()

    def fit(
        self, model: TorchRecommender, train: Dataset, valid: Dataset | None
    ) -> TrainingHistory:
        """Train `model.module_` in place; with `valid`, keep the best epoch's weights."""
        cfg = model.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        rng = seed_everything(cfg.seed)
        metric, k = parse_metric(cfg.valid_metric)
        module = model.module_
        optimizer = make_optimizer(cfg, module.parameters())
        schedule = make_schedule(cfg, optimizer)
        history = self.history = TrainingHistory()
        best_state: dict[str, torch.Tensor] | None = None
        start_epoch, stale = 0, 0
        if self.resume and self.checkpoint_dir and (self.checkpoint_dir / "last.pt").is_file():
            start_epoch, best_state, stale = self._load_checkpoint(model, optimizer, schedule)
            rng = np.random.default_rng([cfg.seed, start_epoch])
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        t_start = time.perf_counter()
        with self._progress(cfg.epochs) as bar:
            task = bar.add_task(
                model.name or type(model).__name__, total=cfg.epochs, completed=start_epoch, info=""
            )
            for epoch in range(start_epoch, cfg.epochs):
                record = self._train_epoch(model, optimizer, train, rng, epoch)
                if schedule is not None:
                    schedule.step()
                model.invalidate_cache()
                if valid is not None and (epoch + 1) % cfg.eval_every == 0:
                    module.eval()
                    t0 = time.perf_counter()
                    res = evaluate_ranking(
                        model,
                        valid,
                        exclude=[train],
                        ks=(k,),
                        metrics=(metric,),
                        beyond_accuracy=False,
                    )
                    record.valid_seconds = time.perf_counter() - t0
                    record.valid = res.summary
                    score = res.summary[f"{metric}@{k}"]
                    if history.best_score is None or score > history.best_score:
                        history.best_score, history.best_epoch, stale = score, epoch, 0
                        best_state = copy.deepcopy(module.state_dict())
                    else:
                        stale += 1
                history.epochs.append(record)
                self._log(record)
                self._save_checkpoint(model, optimizer, schedule, epoch, best_state, stale)
                bar.update(task, advance=1, info=self._describe(record, history))
                if valid is not None and stale > cfg.patience:
                    history.stopped_by = "early_stopping"
                    break
                if cfg.max_seconds and time.perf_counter() - t_start > cfg.max_seconds:
                    history.stopped_by = "time_budget"
                    break
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        return history

    # ---- one epoch -------------------------------------------------------------------------
    def _train_epoch(
        self,
        model: TorchRecommender,
        optimizer: torch.optim.Optimizer,
        train: Dataset,
        rng: np.random.Generator,
        epoch: int,
    ) -> EpochRecord:
        cfg = model.config
        model.module_.train()
        model.on_epoch_start(epoch)
        t0 = time.perf_counter()
        total, n_batches, n_samples = 0.0, 0, 0
        for batch in model.batches(train, rng):
            optimizer.zero_grad(set_to_none=True)
            loss = model.compute_loss(batch)
            if not torch.isfinite(loss):
                raise ConfigError(
                    f"{model.name}: loss became {loss.item()} at epoch {epoch}; "
                    "lower lr or raise weight_decay"
                )
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.module_.parameters(), cfg.grad_clip)
            optimizer.step()
            total += float(loss.detach())
            n_batches += 1
            n_samples += model.n_batch_samples(batch)
        seconds = time.perf_counter() - t0
        return EpochRecord(
            epoch=epoch,
            loss=total / max(n_batches, 1),
            train_seconds=seconds,
            samples_per_second=n_samples / max(seconds, 1e-9),
            lr=optimizer.param_groups[0]["lr"],
        )

    # ---- reporting and checkpoints -----------------------------------------------------------
    def _progress(self, total: int) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            disable=not self.progress,
            transient=False,
        )

    @staticmethod
    def _describe(record: EpochRecord, history: TrainingHistory) -> str:
        text = f"loss {record.loss:.4f}  {record.samples_per_second:,.0f}/s"
        if record.valid:
            text += "  " + "  ".join(f"{k} {v:.4f}" for k, v in record.valid.items())
        return text

    def _log(self, record: EpochRecord) -> None:
        if self.log_path:
            with self.log_path.open("a") as fh:
                fh.write(json.dumps(record.to_dict()) + "\n")

    def _save_checkpoint(
        self,
        model: TorchRecommender,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        epoch: int,
        best_state: dict[str, torch.Tensor] | None,
        stale: int,
    ) -> None:
        if not self.checkpoint_dir:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "epoch": epoch,
            "module": model.module_.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict() if schedule is not None else None,
            "best_state": best_state,
            "stale": stale,
            "history": [e.to_dict() for e in self.history.epochs],
            "best_epoch": self.history.best_epoch,
            "best_score": self.history.best_score,
        }
        tmp = self.checkpoint_dir / "last.pt.tmp"
        torch.save(payload, tmp)
        tmp.replace(self.checkpoint_dir / "last.pt")

    def _load_checkpoint(
        self, model: TorchRecommender, optimizer: torch.optim.Optimizer, schedule: Any
    ) -> tuple[int, dict[str, torch.Tensor] | None, int]:
        assert self.checkpoint_dir is not None
        payload = torch.load(self.checkpoint_dir / "last.pt", weights_only=False)
        model.module_.load_state_dict(payload["module"])
        optimizer.load_state_dict(payload["optimizer"])
        if schedule is not None and payload["schedule"] is not None:
            schedule.load_state_dict(payload["schedule"])
        self.history.epochs = [EpochRecord(**e) for e in payload["history"]]
        self.history.best_epoch = payload["best_epoch"]
        self.history.best_score = payload["best_score"]
        return payload["epoch"] + 1, payload["best_state"], payload["stale"]
