"""The registry: names, duplicates, and the history mode every model must declare."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tuijian.errors import ConfigError
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.registry import available_models, get_model, get_model_class, register


class _Constant(Recommender[ModelConfig]):
    """Scores every item 1 (a stand-in for the checks below)."""

    def _fit(self, train: Any, *, valid: Any, trainer: Any) -> None:
        return None

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        return np.ones((len(user_idx), self.n_items), dtype=np.float32)


def test_a_model_without_a_history_mode_cannot_register() -> None:
    with pytest.raises(TypeError, match="history_mode must be"):
        register("test-no-mode")(type("NoMode", (_Constant,), {}))
    with pytest.raises(TypeError, match="no score_history"):
        register("test-no-scorer")(type("NoScorer", (_Constant,), {"history_mode": "native"}))
    assert "test-no-mode" not in available_models()


def test_duplicate_names_raise_and_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("ease")(
            type("Other", (_Constant,), {"history_mode": "none", "score_history": _Constant.score})
        )
    with pytest.raises(ConfigError, match=r"available: (\w+, )*als, "):
        get_model("no-such-model")


def test_every_builtin_declares_how_it_reads_a_history() -> None:
    modes = {name: get_model_class(name).history_mode for name in available_models()}
    assert modes["ease"] == modes["itemknn"] == modes["multvae"] == "native"
    assert modes["als"] == modes["bpr"] == modes["lightgcn"] == modes["neumf"] == "fold_in"
    assert modes["pop"] == modes["random"] == "none"
    assert set(modes.values()) <= {"native", "fold_in", "none"}
