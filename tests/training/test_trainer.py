"""Trainer: reproducibility, early stopping, time budget, log, resume, optimizers, safety."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.models import contract
from tests.training.toy import ToyMF
from tuijian.data import Split, random_split
from tuijian.errors import ConfigError, DataError
from tuijian.models.neural import TorchRecommender
from tuijian.models.registry import get_model
from tuijian.training import EpochRecord, Trainer, TrainingHistory
from tuijian.training import trainer as trainer_module


@pytest.fixture(scope="module")
def split() -> Split:
    return random_split(contract.contract_dataset(), (0.6, 0.2, 0.2), seed=0)


def fit(
    split: Split, trainer: Trainer | None = None, valid: bool = True, **config: Any
) -> tuple[ToyMF, TrainingHistory]:
    trainer = trainer or Trainer(progress=False)
    model = ToyMF(**{"epochs": 4, "batch_size": 8, "lr": 0.05, **config})
    model.fit(split.train, valid=split.valid if valid else None, trainer=trainer)
    return model, trainer.history


def weights(model: TorchRecommender) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.module_.state_dict().items()}


def assert_same_weights(a: TorchRecommender, b: TorchRecommender) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key])


def test_same_seed_gives_identical_metrics_and_weights(split: Split) -> None:
    a, ha = fit(split, seed=3)
    b, hb = fit(split, seed=3)
    assert [e.loss for e in ha.epochs] == [e.loss for e in hb.epochs]
    assert [e.valid for e in ha.epochs] == [e.valid for e in hb.epochs]
    assert_same_weights(a, b)
    c, _ = fit(split, seed=4)
    assert not np.array_equal(weights(a)["user.weight"], weights(c)["user.weight"])


def test_history_records_every_epoch(split: Split) -> None:
    _, history = fit(split, epochs=3)
    assert [e.epoch for e in history.epochs] == [0, 1, 2]
    assert history.stopped_by == "max_epochs"
    for record in history.epochs:
        assert record.loss > 0 and record.train_seconds > 0 and record.samples_per_second > 0
        assert record.valid is not None and set(record.valid) == {"ndcg@10"}
    best = max(range(3), key=lambda e: history.epochs[e].valid["ndcg@10"])
    assert history.best_epoch == best
    assert history.best_score == history.epochs[best].valid["ndcg@10"]
    assert history.to_dict()["epochs"][0]["epoch"] == 0


def scripted_validation(
    monkeypatch: pytest.MonkeyPatch, scores: list[float], baseline: float = 0.0
) -> None:
    """Make the Trainer's validation return `scores` in order, popularity's `baseline`."""
    queue = iter(scores)
    monkeypatch.setattr(Trainer, "_baseline", lambda self, train, valid, metric: baseline)

    def fake(self: Trainer, model: Any, train: Any, valid: Any, metric: Any, record: Any) -> float:
        record.valid = {"ndcg@10": next(queue)}
        return record.valid["ndcg@10"]

    monkeypatch.setattr(Trainer, "_validate", fake)


def snapshots(store: list[dict[str, np.ndarray]]) -> Any:
    def callback(model: TorchRecommender, record: EpochRecord) -> None:
        store.append(weights(model))

    return callback


def test_early_stopping_after_patience_restores_the_best_epoch(
    split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_validation(monkeypatch, [0.1, 0.3, 0.2, 0.25, 0.5, 0.6])
    seen: list[dict[str, np.ndarray]] = []
    trainer = Trainer(progress=False, callbacks=[snapshots(seen)])
    model, history = fit(split, trainer, epochs=6, patience=2)
    assert history.stopped_by == "early_stopping"
    assert len(history.epochs) == 4  # epochs 2 and 3 are the two stale evaluations
    assert history.best_epoch == 1 and history.best_score == 0.3
    for key, value in weights(model).items():
        np.testing.assert_array_equal(value, seen[1][key])
    assert not np.array_equal(seen[1]["user.weight"], seen[3]["user.weight"])


def test_patience_zero_stops_at_the_first_stale_evaluation(
    split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_validation(monkeypatch, [0.1, 0.2, 0.2, 0.3])
    _, history = fit(split, epochs=4, patience=0)
    assert len(history.epochs) == 3 and history.best_epoch == 1  # ties do not improve


def test_patience_counts_only_once_the_model_beats_popularity(
    split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 0.21 beats popularity's 0.2 but not clearly (LEFT_START): 0.12 and 0.11 are not stale
    scripted_validation(monkeypatch, [0.1, 0.21, 0.12, 0.11, 0.3, 0.25, 0.2, 0.4], baseline=0.2)
    _, history = fit(split, epochs=10, patience=2)
    assert history.stopped_by == "early_stopping" and history.baseline_score == 0.2
    assert len(history.epochs) == 7 and history.best_epoch == 4


def test_a_model_that_never_beats_popularity_trains_to_the_last_epoch(split: Split) -> None:
    _, history = fit(split, epochs=5, patience=1, lr=1e-9)  # frozen at its random start
    pop = get_model("pop").fit(split.train)
    res = trainer_module.evaluate_ranking(
        pop, split.valid, exclude=[split.train], ks=(10,), metrics=("ndcg",)
    )
    assert history.baseline_score == pytest.approx(res.summary["ndcg@10"])
    assert history.best_score is not None and history.best_score < history.baseline_score
    assert history.stopped_by == "max_epochs" and len(history.epochs) == 5


def test_eval_every_validates_on_schedule_and_after_the_last_epoch(split: Split) -> None:
    _, history = fit(split, epochs=5, eval_every=2)
    assert [e.epoch for e in history.epochs if e.valid] == [1, 3, 4]
    assert all(e.valid_seconds == 0.0 for e in history.epochs if not e.valid)


def test_a_real_drop_in_the_metric_stops_training(split: Split) -> None:
    def blow_up(model: TorchRecommender, record: EpochRecord) -> None:
        if record.epoch == 1:  # from now on the lr is far too high: the ranking degrades
            with torch.no_grad():
                for p in model.module_.parameters():
                    p.add_(torch.randn_like(p) * 5.0)

    trainer = Trainer(progress=False, callbacks=[blow_up])
    model, history = fit(split, trainer, epochs=30, patience=3, lr=0.05)
    assert history.stopped_by == "early_stopping"
    assert history.best_epoch is not None and len(history.epochs) < 30
    best = history.epochs[history.best_epoch].valid
    assert best is not None
    res = trainer_module.evaluate_ranking(
        model, split.valid, exclude=[split.train], ks=(10,), metrics=("ndcg",)
    )
    assert res.summary["ndcg@10"] == pytest.approx(best["ndcg@10"])


def test_max_seconds_stops_training(split: Split) -> None:
    _, history = fit(split, Trainer(progress=False, max_seconds=1e-6), epochs=50)
    assert history.stopped_by == "time_budget"
    assert len(history.epochs) == 1
    assert history.epochs[0].valid is not None  # the last epoch before stopping is validated


def test_jsonl_log_has_one_record_per_epoch(split: Split, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "train.jsonl"
    fit(split, Trainer(progress=False, log_path=log), epochs=3)
    fit(split, Trainer(progress=False, log_path=log), epochs=3)  # a fresh fit rewrites it
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    for r in records:
        assert r["loss"] > 0 and r["train_seconds"] > 0 and "ndcg@10" in r["valid"]
        assert r["lr"] == 0.05


def stop_after(epoch: int) -> Any:
    def callback(model: TorchRecommender, record: EpochRecord) -> bool:
        return record.epoch == epoch

    return callback


@pytest.mark.parametrize("with_valid", [False, True])
def test_resume_gives_the_uninterrupted_result(
    split: Split, tmp_path: Path, with_valid: bool
) -> None:
    config = {"epochs": 5, "lr_schedule": "cosine", "seed": 11}
    full, full_history = fit(split, valid=with_valid, **config)
    ckpt = tmp_path / "ckpt"
    first = Trainer(progress=False, checkpoint_dir=ckpt, callbacks=[stop_after(1)])
    _, history = fit(split, first, valid=with_valid, **config)
    assert history.stopped_by == "callback" and len(history.epochs) == 2
    log = tmp_path / "resumed.jsonl"
    second = Trainer(progress=False, checkpoint_dir=ckpt, resume=True, log_path=log)
    resumed, resumed_history = fit(split, second, valid=with_valid, **config)
    assert_same_weights(resumed, full)
    assert [e.epoch for e in resumed_history.epochs] == [0, 1, 2, 3, 4]
    assert [e.loss for e in resumed_history.epochs] == [e.loss for e in full_history.epochs]
    assert resumed_history.best_epoch == full_history.best_epoch
    assert len(log.read_text().splitlines()) == 5


def test_resume_of_an_early_stopped_run_trains_no_more(
    split: Split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_validation(monkeypatch, [0.5, 0.1, 0.1])
    _, history = fit(split, Trainer(progress=False, checkpoint_dir=tmp_path), epochs=6, patience=2)
    assert len(history.epochs) == 3
    again = Trainer(progress=False, checkpoint_dir=tmp_path, resume=True)
    _, resumed = fit(split, again, epochs=6, patience=2)
    assert len(resumed.epochs) == 3 and resumed.stopped_by == "early_stopping"


def test_resume_refuses_another_models_checkpoint(split: Split, tmp_path: Path) -> None:
    fit(split, Trainer(progress=False, checkpoint_dir=tmp_path), epochs=1)
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    payload["model"] = "gmf"
    torch.save(payload, tmp_path / "last.pt")
    with pytest.raises(ConfigError, match="checkpoint of 'gmf'"):
        fit(split, Trainer(progress=False, checkpoint_dir=tmp_path, resume=True), epochs=2)


@pytest.mark.parametrize(
    ("name", "cls", "extra"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.8}),
        ("adam", torch.optim.Adam, {}),
        ("adamw", torch.optim.AdamW, {}),
    ],
)
def test_make_optimizer(name: str, cls: type, extra: dict[str, float]) -> None:
    config = ToyMF(optimizer=name, lr=0.01, weight_decay=0.1, **extra).config
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = trainer_module.make_optimizer(config, params)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.01 and group["weight_decay"] == 0.1
    if name == "sgd":
        assert group["momentum"] == 0.8


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_every_optimizer_trains(split: Split, optimizer: str) -> None:
    _, history = fit(split, valid=False, optimizer=optimizer, epochs=8, lr=0.1)
    assert history.epochs[-1].loss < history.epochs[0].loss


def test_cosine_schedule(split: Split) -> None:
    _, history = fit(split, epochs=4, lr=0.1, lr_schedule="cosine", valid=False)
    expected = [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    np.testing.assert_allclose([e.lr for e in history.epochs], expected, rtol=1e-9)


def test_step_schedule(split: Split) -> None:
    config = {"lr_schedule": "step", "lr_step_epochs": 2, "lr_gamma": 0.1}
    _, history = fit(split, epochs=5, lr=0.1, valid=False, **config)
    np.testing.assert_allclose(
        [e.lr for e in history.epochs], [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-9
    )


def test_grad_clip_bounds_the_gradient_norm(split: Split) -> None:
    # plain SGD with lr 1 and one batch: the update is exactly minus the (clipped) gradient
    config = {"optimizer": "sgd", "momentum": 0.0, "lr": 1.0, "epochs": 1, "batch_size": 10_000}
    start, _ = fit(split, valid=False, **{**config, "lr": 1e-30})
    clipped, history = fit(split, valid=False, loss_scale=1e4, grad_clip=0.5, **config)
    step = np.sqrt(
        sum(((weights(clipped)[k] - weights(start)[k]) ** 2).sum() for k in weights(start))
    )
    assert step == pytest.approx(0.5, rel=1e-4)
    assert history.epochs[0].grad_norm is not None and history.epochs[0].grad_norm > 100


def test_nan_loss_before_any_best_epoch_raises_a_clear_error(split: Split) -> None:
    with pytest.raises(ConfigError, match=r"ToyMF: loss became nan at epoch 1, batch 0; lower lr"):
        fit(split, valid=False, batch_size=10_000, nan_at_batch=1)


def test_nan_loss_after_a_best_epoch_stops_by_divergence_and_restores_it(split: Split) -> None:
    kept: list[dict[str, np.ndarray]] = []
    trainer = Trainer(progress=False, callbacks=[snapshots(kept)])
    model, history = fit(split, trainer, batch_size=10_000, nan_at_batch=1)
    assert history.stopped_by == "divergence" and len(history.epochs) == 1
    assert history.best_epoch == 0 and history.summary()["stopped_by"] == "divergence"
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, kept[0][name])


def test_threads_are_set_for_the_fit_and_restored(split: Split) -> None:
    before = torch.get_num_threads()
    during: list[int] = []
    trainer = Trainer(
        progress=False,
        threads=before + 1,
        callbacks=[lambda m, r: during.append(torch.get_num_threads())],
    )
    fit(split, trainer, epochs=1)
    assert during == [before + 1]
    assert torch.get_num_threads() == before


def test_callbacks_add_to_the_log_and_can_stop(split: Split, tmp_path: Path) -> None:
    def note(model: TorchRecommender, record: EpochRecord) -> None:
        record.extra["twice"] = 2.0 * record.epoch

    log = tmp_path / "log.jsonl"
    trainer = Trainer(progress=False, log_path=log, callbacks=[note, stop_after(2)])
    _, history = fit(split, trainer, epochs=10)
    assert history.stopped_by == "callback" and len(history.epochs) == 3
    assert [json.loads(line)["extra"]["twice"] for line in log.read_text().splitlines()] == [
        0.0,
        2.0,
        4.0,
    ]


def test_ctrl_c_stops_and_keeps_the_best_weights(
    split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_validation(monkeypatch, [0.1, 0.9, 0.2, 0.3])
    seen: list[dict[str, np.ndarray]] = []

    def interrupt(model: TorchRecommender, record: EpochRecord) -> None:
        if record.epoch == 2:
            raise KeyboardInterrupt

    trainer = Trainer(progress=False, callbacks=[snapshots(seen), interrupt])
    model, history = fit(split, trainer, epochs=4, patience=5)
    assert history.stopped_by == "interrupted" and history.best_epoch == 1
    for key, value in weights(model).items():
        np.testing.assert_array_equal(value, seen[1][key])


def test_bad_valid_metric_and_empty_valid(split: Split) -> None:
    with pytest.raises(ConfigError, match="valid_metric must be METRIC@K"):
        fit(split, valid_metric="ndcg")
    with pytest.raises(ConfigError, match="valid_metric"):
        fit(split, valid_metric="auc@10")
    empty = split.valid.with_interactions(split.valid.interactions.head(0), name="valid")
    model = ToyMF(epochs=1)
    with pytest.raises(DataError, match="validation part has no interactions"):
        model.fit(split.train, valid=empty, trainer=Trainer(progress=False))


def test_progress_bar_runs(split: Split) -> None:
    _, history = fit(split, Trainer(progress=True), epochs=2)
    assert len(history.epochs) == 2


class SlowToy(ToyMF):
    """ToyMF whose every batch takes 100 ms more: an epoch of the split outlasts a 1 s budget."""

    def compute_loss(self, batch: Any) -> torch.Tensor:
        time.sleep(0.1)
        return super().compute_loss(batch)


def test_time_budget_holds_between_batches(split: Split, tmp_path: Path) -> None:
    trainer = Trainer(progress=False, max_seconds=1.0, log_path=tmp_path / "log.jsonl")
    model = SlowToy(epochs=50, batch_size=1, lr=0.05)
    start = time.perf_counter()
    model.fit(split.train, valid=split.valid, trainer=trainer)
    seconds = time.perf_counter() - start
    history = trainer.history
    assert split.train.n_interactions * 0.1 > 3.0  # batch_size 1: over 3 s per epoch
    assert seconds < 1.3, seconds
    assert history.stopped_by == "time_budget"
    assert len(history.epochs) == 1 and history.epochs[0].partial
    assert history.epochs[0].valid is not None and history.best_epoch == 0  # kept, validated
    assert json.loads((tmp_path / "log.jsonl").read_text())["partial"] is True
    summary = history.summary()
    assert summary is not None
    assert summary["epochs"] == 1 and summary["partial_epochs"] == 1
    assert summary["stopped_by"] == "time_budget" and summary["best_epoch"] == 0
    assert summary["epoch_seconds"] == pytest.approx(history.epochs[0].train_seconds)
    assert 0.9 < summary["epoch_seconds"] < 1.1


def test_summary_of_a_full_run(split: Split) -> None:
    _, history = fit(split, epochs=3)
    summary = history.summary()
    assert summary is not None
    assert summary["epochs"] == 3 and summary["partial_epochs"] == 0
    assert summary["stopped_by"] == history.stopped_by and summary["valid_metric"] == "ndcg@10"
    assert summary["best_score"] == history.best_score
    assert summary["baseline_score"] == history.baseline_score is not None
    seconds = sorted(e.train_seconds for e in history.epochs)
    assert summary["epoch_seconds"] == seconds[1]
    assert "partial" not in history.epochs[0].to_dict()
    assert TrainingHistory().summary() is None
