"""Model registry: short stable names -> Recommender classes (`@register("ease")`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeVar

from tuijian.errors import ConfigError

if TYPE_CHECKING:
    from tuijian.models.base import Recommender

_REGISTRY: dict[str, type[Recommender]] = {}
_T = TypeVar("_T", bound="type[Recommender]")

# Modules whose import registers the built-in models; imported lazily on first lookup.
BUILTIN_MODULES: tuple[str, ...] = (
    "tuijian.models.classic",
    "tuijian.models.ncf",
    "tuijian.models.autoencoder",
    "tuijian.models.graph",
    "tuijian.models.sequential",
    "tuijian.models.two_tower",
    "tuijian.models.ctr",
    "tuijian.models.pipeline",
)


def register(name: str):
    """Class decorator that registers a model under `name`; a duplicate name raises."""

    def deco(cls: _T) -> _T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name]}")
        check_history_mode(cls)
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def check_history_mode(cls: type[Recommender]) -> None:
    """A model must say how it treats a history unseen at fit, and then be able to score one."""
    from tuijian.models.base import Recommender

    mode = cls.history_mode
    if mode not in ("native", "fold_in", "none"):
        raise TypeError(
            f"{cls.__name__}.history_mode must be 'native', 'fold_in' or 'none', got {mode!r}"
        )
    if cls.score_history is Recommender.score_history:
        raise TypeError(f"{cls.__name__} declares history_mode={mode!r} but no score_history")


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a family not built yet
            if exc.name != module:
                raise


def available_models() -> list[str]:
    """Registered model names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[Recommender]:
    """The class registered under `name`; an unknown name lists the valid ones."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def get_model(name: str, **overrides: Any) -> Recommender:
    """Instantiate a registered model with config overrides: `get_model("ease", l2=500)`."""
    return get_model_class(name)(**overrides)
