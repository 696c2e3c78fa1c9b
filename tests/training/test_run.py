"""What the Trainer owns: run settings, the run's randomness, precision, any validation metric."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import tuijian
from tests.models import contract
from tests.training.toy import ToyMF
from tuijian.data import Split, random_split
from tuijian.errors import ConfigError
from tuijian.models.base import Recommender
from tuijian.models.registry import get_model
from tuijian.training import RunRandom, Trainer
from tuijian.training.trainer import improves, parse_metric


@pytest.fixture(scope="module")
def split() -> Split:
    return random_split(contract.contract_dataset(), (0.6, 0.2, 0.2), seed=0)


def toy(**config: Any) -> ToyMF:
    return ToyMF(**{"epochs": 2, "batch_size": 8, "lr": 0.05, **config})


@pytest.mark.parametrize(
    ("key", "value", "flag"),
    [
        ("threads", 2, "--threads"),
        ("device", "cpu", "--device"),
        ("max_seconds", 5.0, "--max-seconds"),
    ],
)
def test_run_settings_are_not_model_parameters(key: str, value: Any, flag: str) -> None:
    message = (
        rf"ToyMF: {key} is a run setting now, not a model parameter: Trainer\({key}=...\) / {flag}"
    )
    with pytest.raises(ConfigError, match=message):
        toy(**{key: value})
    with pytest.raises(ConfigError, match=message):
        ToyMF({key: value})
    with pytest.raises(ConfigError, match="precision is a run setting now"):
        get_model("multvae", precision="bf16")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"device": "toaster"}, "Trainer device: not a torch device: 'toaster'"),
        ({"threads": 0}, "Trainer threads: Input should be greater than or equal to 1"),
        ({"max_seconds": -1.0}, "Trainer max_seconds"),
        ({"precision": "fp8"}, "Trainer precision"),
    ],
)
def test_bad_run_options_raise_one_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Trainer(**options)
    assert "\n" not in str(info.value)


def test_a_precision_the_model_does_not_run_in_is_refused(split: Split) -> None:
    with pytest.raises(ConfigError, match="ToyMF runs in fp32, not precision 'bf16'"):
        toy().fit(split.train, trainer=Trainer(progress=False, precision="bf16"))


def test_bf16_precision_is_recorded_used_for_scoring_and_saved(
    split: Split, tmp_path: Path
) -> None:
    config = {"hidden_sizes": (16,), "latent_size": 8, "epochs": 1}
    fp32 = get_model("multvae", **config).fit(split.train, trainer=Trainer(progress=False))
    bf16 = get_model("multvae", **config).fit(
        split.train, trainer=Trainer(progress=False, precision="bf16")
    )
    assert (fp32.precision_, bf16.precision_) == ("fp32", "bf16")
    users = np.arange(split.train.n_users)
    scores = bf16.score(users)
    assert not torch.equal(scores, fp32.score(users))  # bf16 matmuls round differently
    loaded = Recommender.load(bf16.save(tmp_path / "m"))
    assert loaded.precision_ == "bf16"  # type: ignore[attr-defined]
    assert torch.equal(loaded.score(users), scores)


def test_device_comes_from_the_trainer_and_load_puts_the_model_on_cpu(
    split: Split, tmp_path: Path
) -> None:
    model = toy().fit(split.train, trainer=Trainer(progress=False, device="cpu"))
    assert model.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in model.module_.parameters())


def test_fit_without_a_trainer_uses_the_registered_default(split: Split) -> None:
    model = get_model("bpr", embedding_size=4, epochs=1).fit(split.train)
    assert model.module_ is not None


def test_models_never_import_the_training_package() -> None:
    root = Path(tuijian.__file__).parent / "models"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("tuijian.training")]
    assert offenders == []


def test_a_fit_leaves_the_global_torch_generator_alone(split: Split) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    toy(seed=7).fit(split.train, valid=split.valid, trainer=Trainer(progress=False))
    assert torch.equal(torch.get_rng_state(), before)


def test_the_run_random_stream_is_a_function_of_seed_and_epoch() -> None:
    rng = RunRandom(5)
    first = rng.epoch(3).integers(0, 1 << 30, size=4), torch.rand(3)
    rng.epoch(0)
    torch.rand(10)  # other epochs and draws in between do not matter
    again = RunRandom(5).epoch(3).integers(0, 1 << 30, size=4), torch.rand(3)
    np.testing.assert_array_equal(first[0], again[0])
    assert torch.equal(first[1], again[1])
    other = RunRandom(6).epoch(3).integers(0, 1 << 30, size=4)
    assert not np.array_equal(first[0], other)


def test_resume_refuses_a_checkpoint_of_another_seed(split: Split, tmp_path: Path) -> None:
    toy(seed=1).fit(split.train, trainer=Trainer(progress=False, checkpoint_dir=tmp_path))
    again = Trainer(progress=False, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="written with seed 1, the model has seed 2"):
        toy(seed=2).fit(split.train, trainer=again)


def test_score_metrics_need_no_cut_off_and_know_their_direction() -> None:
    assert parse_metric("auc") == ("auc", None)
    assert parse_metric("logloss") == ("logloss", None)
    assert parse_metric("recall@20") == ("recall", 20)
    assert improves("logloss", 0.2, 0.3) and not improves("logloss", 0.3, 0.2)
    assert improves("auc", 0.8, 0.7) and not improves("auc", 0.7, 0.7)
    assert improves("logloss", 5.0, None)


@pytest.mark.parametrize("metric", ["auc", "logloss"])
def test_validation_on_a_score_metric(split: Split, metric: str) -> None:
    trainer = Trainer(progress=False)
    toy(valid_metric=metric, epochs=3).fit(split.train, valid=split.valid, trainer=trainer)
    values = [e.valid[metric] for e in trainer.history.epochs if e.valid]
    assert len(values) == 3
    best = min(values) if metric == "logloss" else max(values)
    assert trainer.history.best_score == best
    assert trainer.history.best_epoch == values.index(best)
    if metric == "auc":
        assert all(0.0 <= v <= 1.0 for v in values)
    else:
        assert all(v > 0 for v in values)


def test_early_stopping_on_logloss_keeps_the_lowest(
    split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = iter([0.5, 0.3, 0.4, 0.45, 0.1])

    def fake(self: Trainer, model: Any, train: Any, valid: Any, metric: Any, record: Any) -> float:
        record.valid = {"logloss": next(queue)}
        return record.valid["logloss"]

    monkeypatch.setattr(Trainer, "_validate", fake)
    trainer = Trainer(progress=False)
    toy(valid_metric="logloss", epochs=5, patience=2).fit(
        split.train, valid=split.valid, trainer=trainer
    )
    assert trainer.history.stopped_by == "early_stopping"
    assert (trainer.history.best_epoch, trainer.history.best_score) == (1, 0.3)
