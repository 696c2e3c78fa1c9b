"""The Trainer: one training loop for every torch model (optimizer, early stopping, logs)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich import get_console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tuijian.data.dataset import Dataset
from tuijian.data.split import Holdout, Validation
from tuijian.errors import ConfigError, DataError
from tuijian.evaluation.evaluate import evaluate_ranking
from tuijian.evaluation.metrics import LOWER_IS_BETTER, RANKING_METRICS, SCORE_METRICS
from tuijian.training.history import EpochRecord, TrainingHistory
from tuijian.training.run import Precision, RunRandom, build_run_options

if TYPE_CHECKING:
    from tuijian.models.neural import TorchConfig, TorchRecommender

# Called after each epoch (module in eval mode, validation done); returning True stops training.
# It may add numbers to `record.extra`, which the JSONL log then carries.
EpochCallback = Callable[["TorchRecommender", "EpochRecord"], "bool | None"]
# Batches between two checks that the loss is finite (each check waits for the device).
FINITE_CHECK_EVERY = 256
StateDict = dict[str, torch.Tensor]
# A model has left its starting point once its best validation beats popularity's by this
# factor; until then patience does not count (a popularity-like list is where training starts).
LEFT_START = 1.1


class DivergedError(ConfigError):
    """The training loss became NaN or infinite."""


@dataclass
class _RunState:
    """What one fit carries between epochs: start time, best weights, stale evaluations."""

    start: float
    best_state: StateDict | None = None
    stale: int = 0
    paused: float = 0.0  # seconds spent in callbacks


def make_optimizer(config: TorchConfig, params: Any) -> torch.optim.Optimizer:
    """SGD (momentum), Adam or AdamW with the configured learning rate and weight decay.

    The fused implementation (one kernel for the whole update, same arithmetic) is used when
    every parameter allows it: dense floating-point tensors on CPU or CUDA.
    """
    params = [p for p in params if p.requires_grad]
    fused = bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() and p.layout == torch.strided
        for p in params
    )
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            fused=fused,
        )
    opt_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return opt_class(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def make_schedule(config: TorchConfig, optimizer: torch.optim.Optimizer) -> Any:
    """The per-epoch learning-rate schedule (stepped after each epoch), or None."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step_epochs, config.lr_gamma)
    return None


def parse_metric(name: str) -> tuple[str, int | None]:
    """'ndcg@10' -> ('ndcg', 10), 'auc' -> ('auc', None); anything else raises ConfigError."""
    if name in SCORE_METRICS:
        return name, None
    metric, _, k = name.partition("@")
    if not k.isdigit() or int(k) < 1 or metric not in RANKING_METRICS:
        raise ConfigError(
            f"valid_metric must be METRIC@K with METRIC in {', '.join(RANKING_METRICS)}, "
            f"or one of {', '.join(SCORE_METRICS)}; got {name!r}"
        )
    return metric, int(k)


def improves(metric: str, score: float, best: float | None) -> bool:
    """Whether `score` beats `best` (None: nothing yet) for `metric` (log-loss: lower)."""
    if best is None:
        return True
    return score < best if metric in LOWER_IS_BETTER else score > best


def snapshot(module: torch.nn.Module) -> StateDict:
    """A detached copy of the module's state (the best epoch's weights)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Trainer:
    """Owns a training run: sets the model up, runs epochs of `model.batches` /
    `model.compute_loss` with the model config's optimisation settings, validates, checkpoints.

    The run's settings (`RunOptions`: device, threads, time budget, precision) are the
    Trainer's own; the model config holds only what defines the model and its optimisation.
    Randomness comes from `RunRandom(config.seed)` alone.

    Validation ranks all items for every valid user (train items excluded) after every
    `eval_every` epochs and after the last one; training stops after `patience` evaluations in
    a row without a better `valid_metric` (at the first one when `patience` is 0), and the best
    evaluation's weights are restored at the end. Patience only starts to count once the model
    has clearly beaten the popularity ranking on validation (by `LEFT_START` times
    `history.baseline_score`): a model still at its starting point, a popularity-like list, is
    not stopped there but trained on, up to `epochs` or the time budget. The validation metric
    is any evaluator metric: METRIC@K of the ranking metrics, `auc` or `logloss` (lower is
    better).

    Args:
        device, threads, max_seconds, precision: the run's settings; see `RunOptions`.
        log_path: JSON-lines file receiving one record per epoch (rewritten by a fresh fit).
        checkpoint_dir: where `last.pt` is written after each epoch: the whole training state
            (weights, optimizer, schedule, the model's `training_state`, seed, best weights,
            history), so a resumed run equals an uninterrupted one bit for bit.
        resume: continue from `checkpoint_dir/last.pt` when it exists (a run that stopped
            early stays stopped; one stopped by time, callback or Ctrl-C continues).
        progress: show a rich progress bar.
        callbacks: called after each epoch with (model, record); see `EpochCallback`.
    """

    def __init__(
        self,
        *,
        device: str = "cpu",
        threads: int | None = None,
        max_seconds: float | None = None,
        precision: Precision = "fp32",
        log_path: str | Path | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        callbacks: Sequence[EpochCallback] = (),
    ) -> None:
        self.run = build_run_options(
            device=device, threads=threads, max_seconds=max_seconds, precision=precision
        )
        self.log_path = Path(log_path) if log_path else None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.resume = resume
        self.progress = progress
        self.callbacks = list(callbacks)
        self.history = TrainingHistory()

    def fit(
        self, model: TorchRecommender, train: Dataset, valid: Validation | None = None
    ) -> TrainingHistory:
        """Set the model up on the run's device and train it; with `valid`, keep the best
        epoch's weights. Torch's global random state is the same after the fit as before."""
        metric = parse_metric(model.config.valid_metric)
        if valid is not None and valid.n_interactions == 0:
            raise DataError(f"{valid.name}: the validation part has no interactions")
        opts = self.run
        if opts.precision not in model.precisions:
            raise ConfigError(
                f"{model.name or type(model).__name__} runs in {', '.join(model.precisions)}, "
                f"not precision {opts.precision!r}"
            )
        device = torch.device(opts.device)
        threads = torch.get_num_threads()
        if opts.threads:
            torch.set_num_threads(opts.threads)
        try:
            with RunRandom.isolated(device):
                rng = RunRandom(model.config.seed)
                rng.init()
                model.setup_training(train, device, opts.precision)
                return self._run(model, train, valid, metric, rng)
        finally:
            torch.set_num_threads(threads)

    def _run(
        self,
        model: TorchRecommender,
        train: Dataset,
        valid: Validation | None,
        metric: tuple[str, int | None],
        rng: RunRandom,
    ) -> TrainingHistory:
        cfg = model.config
        optimizer = make_optimizer(cfg, model.module_.parameters())
        schedule = make_schedule(cfg, optimizer)
        self.history = TrainingHistory()
        run = _RunState(time.perf_counter())
        start_epoch = 0
        if self.resume and self.checkpoint_dir and (self.checkpoint_dir / "last.pt").is_file():
            start_epoch = self._load_checkpoint(model, optimizer, schedule, run)
        if valid is not None and metric[0] not in LOWER_IS_BETTER:
            self.history.baseline_score = self._baseline(train, valid, metric)
        self._start_log()
        with self._progress() as bar:
            task = bar.add_task(model.name or type(model).__name__, total=cfg.epochs, info="")
            bar.update(task, completed=start_epoch)
            try:
                for epoch in range(start_epoch, cfg.epochs):
                    record = self._train_epoch(
                        model, optimizer, train, rng.epoch(epoch), epoch, run
                    )
                    if schedule is not None:
                        schedule.step()
                    reason = self._end_epoch(model, train, valid, metric, record, run)
                    self.history.stopped_by = reason or self.history.stopped_by
                    self.history.epochs.append(record)
                    self._log(record)
                    self._save_checkpoint(model, optimizer, schedule, epoch, run)
                    bar.update(task, advance=1, info=self._describe(record))
                    if self.progress and bar.disable:  # not a terminal: one line per epoch
                        bar.console.print(self._epoch_line(model, record), markup=False)
                    if reason:
                        break
            except KeyboardInterrupt:
                self.history.stopped_by = "interrupted"
            except DivergedError:
                if run.best_state is None:  # nothing worth keeping: the run failed
                    raise
                self.history.stopped_by = "divergence"  # the best epoch before it is restored
        if run.best_state is not None:
            model.module_.load_state_dict(run.best_state)
        model.module_.eval()
        model.invalidate_cache()
        self.history.seconds = time.perf_counter() - run.start
        return self.history

    def _end_epoch(
        self,
        model: TorchRecommender,
        train: Dataset,
        valid: Validation | None,
        metric: tuple[str, int | None],
        record: EpochRecord,
        run: _RunState,
    ) -> str | None:
        """Validate when due, track the best weights, run the callbacks; why to stop, or None."""
        cfg, history = model.config, self.history
        model.invalidate_cache()
        model.module_.eval()
        elapsed = time.perf_counter() - run.start - run.paused
        budget = self.run.max_seconds
        over_budget = bool(budget and elapsed > budget) or record.partial
        last = record.epoch + 1 == cfg.epochs
        due = (record.epoch + 1) % cfg.eval_every == 0 or last or over_budget
        if valid is not None and due:
            score = self._validate(model, train, valid, metric, record)
            if improves(metric[0], score, history.best_score):
                history.best_score, history.best_epoch = score, record.epoch
                run.best_state, run.stale = snapshot(model.module_), 0
            elif self._left_start():
                run.stale += 1
        t0 = time.perf_counter()
        stop_asked = any([bool(callback(model, record)) for callback in self.callbacks])
        run.paused += time.perf_counter() - t0  # callbacks do not spend the time budget
        if valid is not None and run.stale and run.stale >= cfg.patience:
            return "early_stopping"
        if stop_asked:
            return "callback"
        if over_budget and (record.partial or not last):
            return "time_budget"
        return None

    # ---- one epoch -------------------------------------------------------------------------
    def _train_epoch(
        self,
        model: TorchRecommender,
        optimizer: torch.optim.Optimizer,
        train: Dataset,
        rng: np.random.Generator,
        epoch: int,
        run: _RunState,
    ) -> EpochRecord:
        """One pass over `model.batches`; it ends early, marked partial, once the time budget
        (checked after every batch, callbacks' time not counted) is spent."""
        cfg = model.config
        budget = self.run.max_seconds
        params = [p for p in model.module_.parameters() if p.requires_grad]
        model.module_.train()
        model.on_epoch_start(epoch)
        t0 = time.perf_counter()
        losses: list[torch.Tensor] = []
        norms: list[torch.Tensor] = []
        n_samples = 0
        partial = False
        for batch in model.batches(train, rng):
            optimizer.zero_grad(set_to_none=True)
            loss = model.compute_loss(batch)
            loss.backward()
            if cfg.grad_clip:
                norms.append(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
            optimizer.step()
            losses.append(loss.detach())
            n_samples += model.n_batch_samples(batch)
            if len(losses) % FINITE_CHECK_EVERY == 0:
                self._check_finite(model, losses, epoch)
            if budget and time.perf_counter() - run.start - run.paused > budget:
                partial = True
                break
        mean_loss = self._check_finite(model, losses, epoch)
        seconds = time.perf_counter() - t0
        return EpochRecord(
            epoch=epoch,
            loss=mean_loss,
            train_seconds=seconds,
            samples_per_second=n_samples / max(seconds, 1e-9),
            lr=optimizer.param_groups[0]["lr"],
            grad_norm=float(torch.stack(norms).max()) if norms else None,
            partial=partial,
        )

    @staticmethod
    def _check_finite(model: TorchRecommender, losses: list[torch.Tensor], epoch: int) -> float:
        """Mean of the batch losses; a NaN or infinite one raises DivergedError naming the batch."""
        if not losses:
            return 0.0
        values = torch.stack(losses).float()
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            batch = int((~finite).nonzero()[0, 0])
            raise DivergedError(
                f"{model.name or type(model).__name__}: loss became {float(values[batch])} at "
                f"epoch {epoch}, batch {batch}; lower lr, set grad_clip or raise weight_decay"
            )
        return float(values.mean())

    def _left_start(self) -> bool:
        """Whether the best validation so far clearly beats popularity (or there is no baseline)."""
        base, best = self.history.baseline_score, self.history.best_score
        return base is None or (best is not None and best > LEFT_START * base)

    def _baseline(self, train: Dataset, valid: Validation, metric: tuple[str, int | None]) -> float:
        """The popularity ranking's `valid_metric`: where a model that learned nothing is."""
        from tuijian.models.registry import get_model  # models register on first use

        pop = get_model("pop").fit(train)
        return self._score(pop, train, valid, metric)[0]

    def _validate(
        self,
        model: TorchRecommender,
        train: Dataset,
        valid: Validation,
        metric: tuple[str, int | None],
        record: EpochRecord,
    ) -> float:
        """Full-ranking `valid_metric` on `valid` (train items excluded), stored on `record`."""
        t0 = time.perf_counter()
        score, record.valid = self._score(model, train, valid, metric)
        record.valid_seconds = time.perf_counter() - t0
        return score

    @staticmethod
    def _score(
        model: Any, train: Dataset, valid: Validation, metric: tuple[str, int | None]
    ) -> tuple[float, dict[str, float]]:
        """`valid_metric` of `model` on `valid` and the whole summary.

        AUC and log-loss have no cut-off; the evaluator computes them from the same score
        blocks as a (1-long, then unused) top list.
        """
        name, k = metric
        with torch.no_grad():
            held = valid if isinstance(valid, Holdout) else Holdout(valid)  # held-out users
            result = evaluate_ranking(
                model,
                held.truth,
                exclude=[train],
                history=held.history,
                ks=(k or 1,),
                metrics=(name,),
                beyond_accuracy=False,
            )
        return result.summary[name if k is None else f"{name}@{k}"], result.summary

    # ---- reporting and checkpoints -----------------------------------------------------------
    def _progress(self) -> Progress:
        """A live bar on a terminal (or notebook); disabled elsewhere (a log file, a pipe),
        where `_run` prints one `_epoch_line` per epoch instead."""
        console = get_console()
        live = console.is_terminal or console.is_jupyter
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=not (self.progress and live),
            transient=False,
        )

    @staticmethod
    def _epoch_line(model: TorchRecommender, record: EpochRecord) -> str:
        """`bpr epoch 3/50: loss 0.4123, ndcg@10 0.1020, 1.2 s` (train and validation time)."""
        name = model.name or type(model).__name__
        text = f"{name} epoch {record.epoch + 1}/{model.config.epochs}: loss {record.loss:.4f}"
        for key, value in (record.valid or {}).items():
            text += f", {key} {value:.4f}"
        return text + f", {record.train_seconds + record.valid_seconds:.1f} s"

    @staticmethod
    def _describe(record: EpochRecord) -> str:
        text = f"loss {record.loss:.4f}  {record.samples_per_second:,.0f}/s"
        if record.valid:
            text += "  " + "  ".join(f"{k} {v:.4f}" for k, v in record.valid.items())
        return text

    def _start_log(self) -> None:
        """Create the log: empty for a fresh fit, the checkpoint's epochs for a resumed one."""
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            lines = [json.dumps(e.to_dict()) + "\n" for e in self.history.epochs]
            self.log_path.write_text("".join(lines))

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
        run: _RunState,
    ) -> None:
        if not self.checkpoint_dir:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "model": model.name or type(model).__name__,
            "epoch": epoch,
            "seed": model.config.seed,
            "module": model.module_.state_dict(),
            "training_state": model.training_state(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict() if schedule is not None else None,
            "best_state": run.best_state,
            "stale": run.stale,
            "history": [e.to_dict() for e in self.history.epochs],
            "best_epoch": self.history.best_epoch,
            "best_score": self.history.best_score,
            "stopped_by": self.history.stopped_by,
        }
        tmp = self.checkpoint_dir / "last.pt.tmp"
        torch.save(payload, tmp)
        tmp.replace(self.checkpoint_dir / "last.pt")

    def _load_checkpoint(
        self,
        model: TorchRecommender,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        run: _RunState,
    ) -> int:
        """Restore a run from `last.pt` into the model, optimizer and `run`; the next epoch."""
        assert self.checkpoint_dir is not None
        path = self.checkpoint_dir / "last.pt"
        payload = torch.load(path, weights_only=True, map_location=model.device)
        name = model.name or type(model).__name__
        if payload["model"] != name:
            raise ConfigError(f"{path} is a checkpoint of {payload['model']!r}, not {name!r}")
        if payload["seed"] != model.config.seed:
            raise ConfigError(
                f"{path} was written with seed {payload['seed']}, the model has seed "
                f"{model.config.seed}: the resumed run would not continue it"
            )
        model.module_.load_state_dict(payload["module"])
        model.load_training_state(payload["training_state"])
        optimizer.load_state_dict(payload["optimizer"])
        if schedule is not None and payload["schedule"] is not None:
            schedule.load_state_dict(payload["schedule"])
        history = self.history
        history.epochs = [EpochRecord(**e) for e in payload["history"]]
        history.best_epoch = payload["best_epoch"]
        history.best_score = payload["best_score"]
        run.best_state, run.stale = payload["best_state"], payload["stale"]
        if payload["stopped_by"] == "early_stopping":
            history.stopped_by = "early_stopping"
            return model.config.epochs
        return payload["epoch"] + 1
