"""Models inside a model: building the components and carrying their state as prefixed keys."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from tuijian.errors import ConfigError
from tuijian.models.base import Recommender
from tuijian.models.query import QueryBatch
from tuijian.models.registry import get_model, get_model_class


def component(name: str, params: dict[str, Any], owner: type, where: str) -> Recommender:
    """An unfitted `name` model with `params`; a model of the `owner` class is refused (`where`
    names the place in the owner's config for the error)."""
    if get_model_class(name) is owner:
        raise ConfigError(f"{where}: a {owner.name} cannot be a component of itself")
    return get_model(name, **params)


def prefixed_state(models: Mapping[str, Recommender]) -> dict[str, Any]:
    """Every component's learned state under `prefix.key`, for the owner's saved state."""
    return {
        f"{prefix}.{key}": value
        for prefix, model in models.items()
        for key, value in model._get_state().items()
    }


def restored(
    model: Recommender, owner: Recommender, state: Mapping[str, Any], prefix: str
) -> Recommender:
    """`model` (unfitted) given the owner's vocabularies and its `prefix.*` state: fitted."""
    model.users_, model.items_, model.seen_ = owner.users_, owner.items_, owner.seen_
    start = f"{prefix}."
    model._set_state({k[len(start) :]: v for k, v in state.items() if k.startswith(start)})
    return model


class ScoredByQueries:
    """`score` and `score_history` as `score_queries` of the matching batch: for models that
    hand whole queries to their components."""

    @abstractmethod
    def score_queries(
        self, queries: QueryBatch, item_idx: np.ndarray | None = None
    ) -> torch.Tensor: ...

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Scores of known users with their training histories."""
        batch = QueryBatch.for_users(self, np.asarray(user_idx))  # type: ignore[arg-type]
        return self.score_queries(batch, item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Scores of histories given at call time."""
        return self.score_queries(QueryBatch.from_history(history), item_idx)
