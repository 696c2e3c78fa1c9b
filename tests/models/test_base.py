"""The config typing of `Recommender`: declared once as the base's type argument."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import pytest

from tuijian.errors import ConfigError
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.classic.ease import EASE, EASEConfig
from tuijian.models.ncf.neumf import GMF, NCFMLP, GMFConfig, MLPConfig, NeuMF, NeuMFConfig
from tuijian.models.neural import TorchConfig, TorchRecommender
from tuijian.models.registry import available_models, get_model_class


class SizeConfig(ModelConfig):
    size: int = 3


SizeT = TypeVar("SizeT", bound=SizeConfig)


class Sized(Recommender[SizeT]):
    """An abstract family typed by a type variable: its config class is the bound."""

    state_fields = ("weights_",)

    def _fit(self, train: Any, *, valid: Any, trainer: Any) -> None:
        self.weights_ = np.zeros(self.config.size)

    def score(self, user_idx, item_idx=None):
        raise NotImplementedError


class BigConfig(SizeConfig):
    size: int = 10


class Big(Sized[BigConfig]):
    state_fields = ("extra_",)


class Untyped(Big):
    """No type argument: inherits its parent's config class and state fields."""


def test_the_type_argument_is_the_config_class() -> None:
    assert EASE.config_class is EASEConfig
    assert Sized.config_class is SizeConfig
    assert Big.config_class is BigConfig and Untyped.config_class is BigConfig
    assert TorchRecommender.config_class is TorchConfig
    assert (GMF.config_class, NCFMLP.config_class) == (GMFConfig, MLPConfig)
    assert NeuMF.config_class is NeuMFConfig
    assert Big(size=4).config == BigConfig(size=4)
    assert EASE(l2=3.0).config.l2 == 3.0


def test_build_config_errors_still_name_the_key() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown parameter\(s\) nope for BigConfig; valid: seed"
    ):
        Big(nope=1)
    with pytest.raises(ConfigError, match=r"BigConfig\.size: .*\(got 'x'\)"):
        Big(size="x")


def test_learned_fields_add_up_along_the_mro() -> None:
    inherited = Recommender.learned_fields()  # what the base itself records in `fit`
    assert Big.learned_fields() == (*inherited, "weights_", "extra_")
    assert Untyped.learned_fields() == Big.learned_fields()


@pytest.mark.parametrize("name", available_models())
def test_every_model_declares_a_concrete_config_class(name: str) -> None:
    cls = get_model_class(name)
    assert cls.config_class is not ModelConfig
    assert set(cls.test_config) <= set(cls.config_class.model_fields)
