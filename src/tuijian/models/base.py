"""The Recommender contract: config, fit, score; recommend, save and load written once here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, get_args, get_origin

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.errors import ConfigError, DataError, NotFittedError
from tuijian.models.query import Query, QueryBatch
from tuijian.models.ranking import SCORE_BUDGET, Ranking, rank, rows_per_batch

__all__ = ["SCORE_BUDGET", "ItemList", "ModelConfig", "Recommender", "rows_per_batch"]

HistoryMode = Literal["native", "fold_in", "none"]


class ModelConfig(BaseModel):
    """Base of every model config: frozen, validated, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    seed: int = 42


ConfigT = TypeVar("ConfigT", bound=ModelConfig)


def build_config(cls: type[ModelConfig], config: ModelConfig | dict | None, overrides: dict):
    """Validate `config` + keyword overrides into `cls`; errors name the bad key and valid ones."""
    base = config.model_dump() if isinstance(config, BaseModel) else dict(config or {})
    base.update(overrides)
    unknown = sorted(set(base) - set(cls.model_fields))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for {cls.__name__}; "
            f"valid: {', '.join(cls.model_fields)}"
        )
    try:
        return cls(**base)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"{cls.__name__}.{loc}: {err['msg']} (got {err.get('input')!r})"
        ) from None


@dataclass(frozen=True)
class ItemList:
    """A ranked list of items for one query: external ids, indices, scores and what produced
    them (the model's name, or a named fallback such as "popularity")."""

    ids: np.ndarray
    idx: np.ndarray
    scores: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                Columns.item_id: [str(x) for x in self.ids.tolist()],
                Columns.score: self.scores.astype(np.float64),
                Columns.rank: np.arange(1, len(self.ids) + 1),
            }
        )


def _as_tensor(scores: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 CPU tensor of a score block that the caller may modify in place.

    `score` returns a new block (the contract test checks it); views and read-only arrays are
    copied here so masking never writes into a model's own buffers.
    """
    if isinstance(scores, torch.Tensor):
        shared = scores._base is not None or (scores.is_leaf and scores.requires_grad)
        out = scores.detach().to("cpu", torch.float32)
        return out.clone() if shared and out.data_ptr() == scores.data_ptr() else out
    arr = np.ascontiguousarray(scores, dtype=np.float32)
    if not arr.flags.writeable or arr.base is not None:
        arr = arr.copy()
    return torch.from_numpy(arr)


class Recommender(ABC, Generic[ConfigT]):
    """A fitted model ranks items for users.

    A model names its config once, as the type argument of its base (`class EASE(
    Recommender[EASEConfig])`, from which `config_class` is derived), declares the learned
    attributes it saves in `state_fields`, and implements `_fit` (learn state ending in `_`)
    and `score` (a users x items block); the base provides `fit`, `recommend`, `save`, `load`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    config: ConfigT
    # Learned attributes this class adds to the saved state (subclasses add their own; see
    # `learned_fields`): numpy arrays, scipy sparse matrices or scalars.
    state_fields: ClassVar[tuple[str, ...]] = ("user_items_",)
    # The settings the shared contract tests fit this model with (tests/models/contract.py):
    # small enough to fit in well under a second on the contract dataset.
    test_config: ClassVar[dict[str, Any]] = {}
    supports_cold_items: ClassVar[bool] = False
    history_mode: ClassVar[HistoryMode | None] = None  # how a history unseen at fit is scored
    predicts_ratings: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = _declared_config(cls)
        if declared is not None:
            cls.config_class = declared

    def __init__(self, config: ModelConfig | dict | None = None, **overrides: Any) -> None:
        self.config = build_config(self.config_class, config, overrides)

    # ---- learning --------------------------------------------------------------------------
    def fit(self, train: Dataset, *, valid: Validation | None = None, trainer: Any = None) -> Self:
        """Learn from `train`; torch models hand their loop to `trainer` (a `Trainer`)."""
        if train.n_interactions == 0:
            raise DataError(f"{train.name}: no interactions to fit {self.name or 'model'} on")
        self.users_ = train.users
        self.items_ = train.items
        self.seen_ = (train.matrix > 0).astype(np.float32).tocsr()
        self.user_items_ = sp.csr_matrix(train.matrix, dtype=np.float32)  # weights, for queries
        self.user_items_.sort_indices()
        self.__dict__.pop("_popularity", None)
        self._fit(train, valid=valid, trainer=trainer)
        return self

    @abstractmethod
    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        """Model-specific learning; sets learned attributes (names ending in `_`)."""

    @abstractmethod
    def score(
        self, user_idx: np.ndarray, item_idx: np.ndarray | None = None
    ) -> np.ndarray | torch.Tensor:
        """Scores of shape (len(user_idx), n_items), or (len(user_idx), len(item_idx))."""

    def predict(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Pointwise scores for (user, item) pairs; rating models return predicted ratings."""
        out = np.empty(len(user_idx), dtype=np.float32)
        order = np.argsort(user_idx, kind="stable")
        users, starts = np.unique(user_idx[order], return_index=True)
        bounds = np.append(starts, len(order))
        for j, u in enumerate(users):
            rows = order[bounds[j] : bounds[j + 1]]
            out[rows] = _as_tensor(self.score(np.array([u]), item_idx[rows])).numpy()[0]
        return out

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "items_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.items_)

    # ---- queries and ranking -----------------------------------------------------------
    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray | torch.Tensor:
        """Scores of histories given at call time: (Q, n_items or len(item_idx)).

        `history` is a (Q, n_items) float32 CSR of summed interaction weights with no empty
        row. History-native models score it directly; fold-in models first compute each
        query's user vector from it with the item side fixed (see `history_mode`).
        """
        raise ConfigError(f"{self.name or type(self).__name__} cannot score a given history")

    def user_history(self, user_idx: np.ndarray) -> sp.csr_matrix:
        """Training histories of known users as weight rows (what `score_history` reads)."""
        self._check_fitted()
        return self.user_items_[np.asarray(user_idx, dtype=np.int64)]

    @property
    def item_popularity_(self) -> np.ndarray:
        """Training users per item (float32): the scores of the popularity fallback."""
        cached = self.__dict__.get("_popularity")
        if cached is None or len(cached) != self.n_items:
            cached = np.asarray(self.seen_.sum(axis=0), dtype=np.float32).ravel()
            self.__dict__["_popularity"] = cached
        return cached

    def score_queries(
        self, queries: QueryBatch, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Scores of a batch of queries, a new float32 CPU tensor (Q, n_items or len(item_idx)).

        Known users with exactly their training history are scored by `score`, other
        histories by `score_history`, and empty ones by the popularity fallback. Models that
        read more than the bag of items (order, times, events) override this.
        """
        empty = queries.empty
        own = queries.own_history & ~empty
        if own.all():
            return _as_tensor(self.score(queries.user_idx, item_idx))
        n_cols = self.n_items if item_idx is None else len(item_idx)
        out = torch.empty((len(queries), n_cols), dtype=torch.float32)
        if own.any():
            out[torch.from_numpy(own)] = _as_tensor(self.score(queries.user_idx[own], item_idx))
        given = ~own & ~empty
        if given.any():
            block = self.score_history(queries.history[given], item_idx)
            out[torch.from_numpy(given)] = _as_tensor(block)
        if empty.any():
            pop = self.item_popularity_ if item_idx is None else self.item_popularity_[item_idx]
            out[torch.from_numpy(empty)] = torch.from_numpy(pop)
        return out

    def topk(
        self,
        user_idx: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores of known users by index (train items not excluded).

        `exclude` is a users x items CSR indexed by user whose stored entries are never
        returned; `candidates` restricts ranking to those item indices.
        """
        users = np.asarray(user_idx, dtype=np.int64)
        queries = QueryBatch.for_users(self, users)
        if exclude is not None:
            queries = queries.with_exclude(sp.csr_matrix(exclude)[users])
        if candidates is not None:
            cand = np.unique(np.asarray(candidates, dtype=np.int64))
            pattern = sp.csr_matrix(
                (
                    np.ones(len(users) * len(cand), np.float32),
                    np.tile(cand, len(users)),
                    np.arange(len(users) + 1) * len(cand),
                ),
                shape=(len(users), self.n_items),
            )
            queries = replace(queries, candidates=pattern)
        ranking = rank(self, queries, k, exclude_seen=False, batch_size=batch_size)
        return ranking.idx, ranking.scores

    def recommend(
        self,
        users: Sequence[object] | object,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Sequence[object] | None = None,
        exclude: Sequence[object] | None = None,
    ) -> list[ItemList]:
        """Top-k items for each external user id or `Query`, best first.

        Args:
            users: one external user id or `Query`, or a sequence of them.
            k: list length (clipped to the catalogue).
            exclude_seen: drop items in the query's history (training and given items).
            candidates: only rank these external item ids (a query's own list wins).
            exclude: never return these external item ids (added to a query's own).
        """
        self._check_fitted()
        if isinstance(users, str | int | np.integer | Query):
            users = [users]
        queries = [u if isinstance(u, Query) else Query(user_id=u) for u in users]  # type: ignore[union-attr]
        batch = QueryBatch.build(self, queries, candidates=candidates, exclude=exclude)
        return self.item_lists(rank(self, batch, k, exclude_seen=exclude_seen))

    def item_lists(self, ranking: Ranking) -> list[ItemList]:
        """A `Ranking` as one `ItemList` per query, in external ids, with its source."""
        out = []
        for row_idx, row_scores, fell in zip(
            ranking.idx, ranking.scores, ranking.fallback, strict=True
        ):
            keep = row_idx >= 0
            source = "popularity" if fell else (self.name or type(self).__name__)
            out.append(
                ItemList(self.items_.id(row_idx[keep]), row_idx[keep], row_scores[keep], source)
            )
        return out

    # ---- persistence (the folder format lives in `tuijian.models.io`) -----------------------
    @classmethod
    def learned_fields(cls) -> tuple[str, ...]:
        """Names of the learned attributes saved with the model: `state_fields` along the MRO."""
        names = (f for klass in reversed(cls.__mro__) for f in vars(klass).get("state_fields", ()))
        return tuple(dict.fromkeys(names))

    @classmethod
    def fit_memory(cls, n_items: int) -> int | None:
        """Peak bytes of a default fit on `n_items` items where they grow with items squared
        (dense items x items models); None where they do not (`tuijian models --data`)."""
        return None

    @classmethod
    def older_state(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Learned values that folders of older versions did not save, derived from `config`."""
        return {}

    def _get_state(self) -> dict[str, Any]:
        """Learned state to save, by attribute name: the `learned_fields`."""
        return {name: getattr(self, name) for name in self.learned_fields()}

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore the `learned_fields` from saved state (after vocabularies are set)."""
        for name in self.learned_fields():
            setattr(self, name, state[name])

    def save(self, path: str | Path) -> Path:
        """Write config, vocabularies, seen items and learned state to a folder (see `io`)."""
        from tuijian.models.io import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load any saved model folder (the registry picks the class from `config.json`)."""
        from tuijian.models.io import load_model

        return load_model(path, None if cls is Recommender else cls)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({fields})"


def _declared_config(cls: type) -> type[ModelConfig] | None:
    """The config class named by `class X(Base[XConfig])`; a type variable stands for its bound."""
    for base in vars(cls).get("__orig_bases__", ()):
        origin = get_origin(base)
        if not (isinstance(origin, type) and issubclass(origin, Recommender)):
            continue
        (arg,) = get_args(base)
        if isinstance(arg, TypeVar):
            arg = arg.__bound__
        if isinstance(arg, type) and issubclass(arg, ModelConfig):
            return arg
    return None
