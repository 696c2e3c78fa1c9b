"""A run interrupted and resumed from its checkpoint equals the uninterrupted run, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.models import contract
from tuijian.data import Split, random_split
from tuijian.models.neural import TorchRecommender
from tuijian.models.registry import available_models, get_model, get_model_class
from tuijian.training import EpochRecord, Trainer

TORCH_MODELS = [
    name for name in available_models() if issubclass(get_model_class(name), TorchRecommender)
]
EPOCHS = 3
# Several batches per epoch and a schedule that changes the lr every epoch, so the optimizer,
# the schedule, the batch order and the model's own counters all have state to carry over.
RUN = {"epochs": EPOCHS, "batch_size": 16, "lr_schedule": "step", "lr_step_epochs": 1}
# Mult-VAE's KL weight grows with every update; anneal fast enough that it shows in 3 epochs.
OVERRIDES: dict[str, dict[str, Any]] = {"multvae": {"total_anneal_steps": 2, "anneal_cap": 1.0}}


@pytest.fixture(scope="module")
def split() -> Split:
    return random_split(contract.contract_dataset(), (0.6, 0.2, 0.2), seed=0)


def fit(name: str, split: Split, trainer: Trainer, valid: bool = True) -> TorchRecommender:
    config: dict[str, Any] = {**contract.tiny_config(name), **RUN, **OVERRIDES.get(name, {})}
    model = get_model(name, **config)
    model.fit(split.train, valid=split.valid if valid else None, trainer=trainer)
    assert isinstance(model, TorchRecommender)
    return model


def stop_after(epoch: int):
    """A callback that interrupts the run once `epoch` is done."""

    def callback(model: TorchRecommender, record: EpochRecord) -> bool:
        return record.epoch == epoch

    return callback


def scores(model: TorchRecommender, split: Split) -> np.ndarray:
    block = model.score(np.arange(split.train.n_users))
    return np.asarray(torch.as_tensor(block).detach().cpu())


def test_every_torch_model_is_checked() -> None:
    assert {"bpr", "multvae", "lightgcn", "neumf", "cdae", "autorec"} <= set(TORCH_MODELS)


# Without validation the final weights are the last epoch's; with it, the best epoch's
# (restored from the checkpointed best weights) and the early-stopping bookkeeping must agree.
@pytest.mark.parametrize(("stopped_at", "valid"), [(0, False), (1, True)])
@pytest.mark.parametrize("name", TORCH_MODELS)
def test_resumed_run_equals_uninterrupted_run(
    name: str, stopped_at: int, valid: bool, split: Split, tmp_path: Path
) -> None:
    whole_run = Trainer(progress=False)
    whole = fit(name, split, whole_run, valid)
    first = Trainer(progress=False, checkpoint_dir=tmp_path, callbacks=[stop_after(stopped_at)])
    fit(name, split, first, valid)
    assert first.history.stopped_by == "callback"
    assert len(first.history.epochs) == stopped_at + 1
    second = Trainer(progress=False, checkpoint_dir=tmp_path, resume=True)
    resumed = fit(name, split, second, valid)
    for a, b in zip(whole_run.history.epochs, second.history.epochs, strict=True):
        assert (a.epoch, a.loss, a.lr, a.valid) == (b.epoch, b.loss, b.lr, b.valid)
    assert whole_run.history.best_epoch == second.history.best_epoch
    whole_state, resumed_state = whole.module_.state_dict(), resumed.module_.state_dict()
    assert whole_state.keys() == resumed_state.keys()
    for key, value in whole_state.items():
        assert torch.equal(value, resumed_state[key]), f"{name}: {key} differs after resume"
    np.testing.assert_array_equal(scores(whole, split), scores(resumed, split))
    assert resumed.training_state() == whole.training_state()


def test_multvae_annealing_counter_is_checkpointed(split: Split, tmp_path: Path) -> None:
    first = Trainer(progress=False, checkpoint_dir=tmp_path, callbacks=[stop_after(0)])
    stopped = fit("multvae", split, first)
    after_one = stopped.training_state()["n_updates"]
    assert after_one == 1  # 12 train users, batch_size 16: one update per epoch
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    assert payload["training_state"] == {"n_updates": after_one}
    resumed = fit("multvae", split, Trainer(progress=False, checkpoint_dir=tmp_path, resume=True))
    assert resumed.training_state() == {"n_updates": EPOCHS * after_one}
