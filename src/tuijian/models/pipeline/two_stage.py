"""The two-stage pipeline: retrieval top-N -> ranker -> business rules, as one Recommender.

    allowed   = items passing the rules' category filter and exclusions (never returned)
    cand      = top-N of the retrieval stage per query, among allowed items the query does
                not hide (its history, exclusions, non-candidates)
    ranked    = the ranker's scores of each query's own candidates; an item past
                `category_cap` items of its category (in ranker order) leaves the candidates
    score     = 1 + r - min(r) over the row's candidates     (candidates, ranker order)
                s - max(s) over the rest - 1                 (the rest, retrieval order)

So the list is the ranker's order of the retrieval stage's candidates, then (when more items
are asked for than candidates survive) the retrieval stage's order of the rest, so lists have
the requested length as for any model; rules are hard: items they block are never returned,
and with `category_cap` only the ranked candidates are (a list may then be shorter). The
stages are named in the config (`retrieval="twotower"`, `ranker="deepfm"`, their settings in
`retrieval_params` / `ranker_params`), fitted on the same training data, and saved inside
the pipeline's folder as prefixed state (`retrieval.*`, `ranker.*`), so the pipeline saves,
loads, evaluates and serves like any model. A ranker with `score_candidates` (the CTR
models) scores only the Q x N pairs; any other model scores the union of the candidates.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.errors import ConfigError
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.pipeline.components import (
    ScoredByQueries,
    component,
    prefixed_state,
    restored,
)
from tuijian.models.query import QueryBatch
from tuijian.models.ranking import mask_block, topk_ordered
from tuijian.models.registry import register
from tuijian.models.two_tower.features import category_names, item_categories

STAGES = ("retrieval", "ranker")


class PipelineConfig(ModelConfig):
    """The stages by registry name with their settings, the candidate count and the rules.

    `categories` keeps only items of these categories (None: every item); `category_cap`
    allows at most that many items of one category among the ranked candidates;
    `exclude_items` are never returned.
    """

    retrieval: str = "twotower"
    retrieval_params: dict[str, Any] = Field(default_factory=dict)
    ranker: str = "deepfm"
    ranker_params: dict[str, Any] = Field(default_factory=dict)
    candidates: int = Field(200, ge=1)
    categories: tuple[str, ...] | None = None
    category_cap: int | None = Field(None, ge=1)
    exclude_items: tuple[str, ...] = ()


def _stage_model(name: str, params: dict[str, Any], stage: str) -> Recommender:
    return component(name, params, TwoStagePipeline, f"pipeline {stage} stage")


@register("pipeline")
class TwoStagePipeline(ScoredByQueries, Recommender[PipelineConfig]):
    """Retrieval -> ranking -> business rules, with the `recommend` contract of any model.

    History-native when both stages are: a history given at call time goes to both.
    """

    history_mode = "native"
    supports_cold_items = True
    state_fields: ClassVar[tuple[str, ...]] = ("allowed_", "item_category_")
    test_config: ClassVar[dict[str, Any]] = {
        "retrieval": "itemknn",
        "ranker": "deepfm",
        "ranker_params": {"epochs": 15, "lr": 0.01, "batch_size": 32},
        "candidates": 6,
    }
    retrieval_stage: Recommender  # fitted in `fit`, saved as `retrieval.*` state
    ranking_stage: Recommender

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        cfg = self.config
        self._rules(train)  # bad rules fail before any training
        retrieval = _stage_model(cfg.retrieval, cfg.retrieval_params, "retrieval")
        ranker = _stage_model(cfg.ranker, cfg.ranker_params, "ranker")
        self.retrieval_stage = retrieval.fit(train, valid=valid, trainer=trainer)
        self.ranking_stage = ranker.fit(train, valid=valid, trainer=trainer)

    def _rules(self, train: Dataset) -> None:
        """The rules as item masks: `allowed_` (filter and exclusions), `item_category_`."""
        cfg = self.config
        cats, n_cat = item_categories(train, 64)
        self.item_category_ = np.where(cats[:, 0] == n_cat, -1, cats[:, 0]).astype(np.int64)
        allowed = np.ones(self.n_items, dtype=bool)
        if cfg.categories is not None:
            names = category_names(train)
            if not names:
                raise ConfigError(f"{train.name}: a category filter needs item categories")
            wanted = np.isin(np.asarray(names, dtype=object), np.asarray(cfg.categories, object))
            code_ok = np.append(wanted, False)  # padding = no category
            allowed &= code_ok[cats].any(axis=1)
        if cfg.exclude_items:
            known = self.items_.index_or_missing(list(cfg.exclude_items))
            if (known < 0).any():
                bad = cfg.exclude_items[int(np.flatnonzero(known < 0)[0])]
                raise ConfigError(f"pipeline exclude_items: unknown item {bad!r}")
            allowed[known] = False
        self.allowed_ = allowed

    # ---- scoring ---------------------------------------------------------------------------
    def candidate_lists(self, queries: QueryBatch) -> tuple[np.ndarray, torch.Tensor]:
        """(Q, N) retrieval candidates per query (-1 where fewer exist) and the retrieval
        block (Q, I) they were drawn from, rules and the query's hidden items applied."""
        self._check_fitted()
        block = self.retrieval_stage.score_queries(queries).float()  # (Q, I)
        block[:, torch.from_numpy(~self.allowed_)] = -torch.inf
        block.masked_fill_(torch.isnan(block), -torch.inf)
        hidden = block.clone()
        for mask in (queries.history, queries.exclude):
            if mask is not None and mask.nnz:
                mask_block(hidden, mask)
        if queries.candidates is not None:
            hidden.masked_fill_(~torch.from_numpy(queries.candidates.toarray() > 0), -torch.inf)
        n = min(self.config.candidates, self.n_items)
        vals, idx = topk_ordered(hidden, n)
        cand = np.where(torch.isneginf(vals).numpy(), -1, idx.numpy())
        return cand, block

    def _ranker_scores(self, queries: QueryBatch, cand: np.ndarray) -> torch.Tensor:
        """(Q, N) ranker scores of each query's candidates (-inf where there is none)."""
        safe = np.maximum(cand, 0)
        ranker = self.ranking_stage
        if hasattr(ranker, "score_candidates"):
            out = ranker.score_candidates(queries, safe)  # type: ignore[attr-defined]
        else:
            cols = np.unique(safe)
            block = ranker.score_queries(queries, cols).float()
            out = block.gather(1, torch.from_numpy(np.searchsorted(cols, safe)))
        return out.float().masked_fill(torch.from_numpy(cand < 0), -torch.inf)

    def _cap(self, cand: np.ndarray, scores: torch.Tensor) -> np.ndarray:
        """`cand` with items past `category_cap` of their category (in ranker order) set -1."""
        cap = self.config.category_cap
        if cap is None:
            return cand
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices.numpy()
        ranked = np.take_along_axis(cand, order, axis=1)  # (Q, N) best first
        cat = np.where(ranked >= 0, self.item_category_[np.maximum(ranked, 0)], -2)
        n_rows, width = ranked.shape
        key = (np.arange(n_rows)[:, None] * (cat.max(initial=0) + 3) + cat + 2).ravel()
        by = np.argsort(key, kind="stable")  # groups of (row, category), ranker order within
        sorted_key = key[by]
        first = np.searchsorted(sorted_key, sorted_key, side="left")
        within = np.empty(len(key), np.int64)
        within[by] = np.arange(len(key)) - first
        over = (within.reshape(n_rows, width) >= cap) & (cat >= 0)
        ranked = np.where(over, -1, ranked)
        out = np.empty_like(cand)
        np.put_along_axis(out, order, ranked, axis=1)
        return out

    def score_queries(
        self, queries: QueryBatch, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Candidates in ranker order above the rest in retrieval order; rule-blocked items
        -inf (see the module docstring); empty histories get the popularity fallback."""
        cand, block = self.candidate_lists(queries)
        ranked = self._ranker_scores(queries, cand)
        cand = self._cap(cand, ranked)
        ranked = ranked.masked_fill(torch.from_numpy(cand < 0), -torch.inf)
        n_q = len(queries)
        is_cand = torch.zeros(block.shape, dtype=torch.bool)
        rows, slots = np.nonzero(cand >= 0)
        is_cand[torch.from_numpy(rows), torch.from_numpy(cand[rows, slots])] = True
        rest = block.masked_fill(is_cand, -torch.inf)
        if self.config.category_cap is not None:  # a hard cap: only ranked candidates remain
            rest.fill_(-torch.inf)
        top_rest = rest.amax(dim=1, keepdim=True)
        out = rest - torch.where(torch.isfinite(top_rest), top_rest, 0.0) - 1.0
        finite = torch.isfinite(ranked)
        low = ranked.masked_fill(~finite, torch.inf).amin(dim=1, keepdim=True)
        shifted = (ranked - low + 1.0).masked_fill(~finite, -torch.inf)
        out[torch.from_numpy(rows), torch.from_numpy(cand[rows, slots])] = shifted[
            torch.from_numpy(rows), torch.from_numpy(slots)
        ]
        empty = queries.empty
        if empty.any():  # nothing known: the flagged popularity fallback, rules applied
            pop = torch.from_numpy(self.item_popularity_).masked_fill(
                torch.from_numpy(~self.allowed_), -torch.inf
            )
            out[torch.from_numpy(empty)] = pop
        out = out if item_idx is None else out[:, torch.from_numpy(np.asarray(item_idx))]
        return out.contiguous() if n_q else out

    # ---- persistence: the stages travel as prefixed state ----------------------------------
    def _get_state(self) -> dict[str, Any]:
        models = dict(zip(STAGES, (self.retrieval_stage, self.ranking_stage), strict=True))
        return super()._get_state() | prefixed_state(models)

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        cfg = self.config
        specs = ((cfg.retrieval, cfg.retrieval_params), (cfg.ranker, cfg.ranker_params))
        self.retrieval_stage, self.ranking_stage = (
            restored(_stage_model(name, params, stage), self, state, stage)
            for stage, (name, params) in zip(STAGES, specs, strict=True)
        )
