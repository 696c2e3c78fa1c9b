"""A weighted blend of models' scores, as one Recommender (e.g. collaborative + content).

    z_k(q, i) = (s_k(q, i) - mean_i s_k(q, .)) / std_i s_k(q, .)     # per query, all items
    score(q, i) = sum_k w_k z_k(q, i)

Each component's row is standardized over the whole catalogue first (non-finite scores take
the row's lowest finite one), so models on different scales (cosines, dot products, counts)
add up by their weights, and the scores of any item subset are those of the full ranking.
The typical use is cold start: a collaborative model that places cold items from their
content only, blended with the `content` model that matches a history's words to theirs.
Components are named in the config (`models`, their settings in `params`), fitted on the
same data and saved inside the blend's folder as prefixed state (`0.*`, `1.*`, ...).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, model_validator

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.models.base import ModelConfig, Recommender, build_config
from tuijian.models.pipeline.components import (
    ScoredByQueries,
    component,
    prefixed_state,
    restored,
)
from tuijian.models.query import QueryBatch
from tuijian.models.registry import register


class BlendConfig(ModelConfig):
    """The component models by registry name, their settings and their weights.

    `params` holds one settings dict per model (empty: every model at its defaults);
    `weights` one weight per model (None: equal weights).
    """

    models: tuple[str, ...] = Field(("twotower", "content"), min_length=1)
    params: tuple[dict[str, Any], ...] = ()
    weights: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _lengths(self) -> BlendConfig:
        n = len(self.models)
        if self.params and len(self.params) != n:
            raise ValueError(f"blend: {len(self.params)} params for {n} models")
        if self.weights is not None and len(self.weights) != n:
            raise ValueError(f"blend: {len(self.weights)} weights for {n} models")
        return self

    def component_params(self) -> tuple[dict[str, Any], ...]:
        """The settings of each component (defaults where `params` is empty)."""
        return self.params or tuple({} for _ in self.models)

    def component_weights(self) -> tuple[float, ...]:
        """The weight of each component (equal where `weights` is None)."""
        return self.weights or tuple(1.0 / len(self.models) for _ in self.models)


def standardized(block: torch.Tensor) -> torch.Tensor:
    """Each row of a (Q, I) score block minus its mean, over its standard deviation; non-finite
    entries first take the row's lowest finite score (0 where a row has none)."""
    block = block.float()
    finite = torch.isfinite(block)
    low = block.masked_fill(~finite, torch.inf).amin(dim=1, keepdim=True)
    low = torch.where(torch.isfinite(low), low, torch.zeros_like(low))
    filled = torch.where(finite, block, low)
    mean = filled.mean(dim=1, keepdim=True)
    std = filled.std(dim=1, correction=0, keepdim=True).clamp_min(1e-12)
    return (filled - mean) / std


@register("blend")
class Blend(ScoredByQueries, Recommender[BlendConfig]):
    """The weighted sum of standardized component scores, with the `recommend` contract.

    History-native when every component is: a history given at call time goes to each.
    """

    history_mode = "native"
    supports_cold_items = True
    test_config: ClassVar[dict[str, Any]] = {
        "models": ("itemknn", "content"),
        "weights": (0.7, 0.3),
    }
    components: list[Recommender]  # fitted in `fit`, saved as `0.*`, `1.*`, ... state

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        cfg = self.config
        models = [
            component(name, params, Blend, "blend")
            for name, params in zip(cfg.models, cfg.component_params(), strict=True)
        ]
        self.components = [model.fit(train, valid=valid, trainer=trainer) for model in models]

    def reweighted(self, weights: tuple[float, ...]) -> Blend:
        """The same fitted components under other weights (to compare weights without refits)."""
        self._check_fitted()
        out = copy.copy(self)
        settings = self.config.model_dump() | {"weights": tuple(weights)}
        out.config = build_config(BlendConfig, settings, {})
        return out

    def score_queries(
        self, queries: QueryBatch, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """sum_k w_k z_k over the whole catalogue, then the asked columns (Q, I or len)."""
        self._check_fitted()
        out = torch.zeros((len(queries), self.n_items), dtype=torch.float32)
        weights = self.config.component_weights()
        for model, weight in zip(self.components, weights, strict=True):
            out += weight * standardized(model.score_queries(queries))
        return out if item_idx is None else out[:, torch.from_numpy(np.asarray(item_idx))]

    # ---- persistence: the components travel as prefixed state ------------------------------
    def _get_state(self) -> dict[str, Any]:
        models = {str(k): model for k, model in enumerate(self.components)}
        return super()._get_state() | prefixed_state(models)

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        cfg = self.config
        specs = zip(cfg.models, cfg.component_params(), strict=True)
        self.components = [
            restored(component(name, params, Blend, "blend"), self, state, str(k))
            for k, (name, params) in enumerate(specs)
        ]
