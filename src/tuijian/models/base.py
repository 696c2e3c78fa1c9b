"""The Recommender contract: config, fit, score; recommend, save and load written once here."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset
from tuijian.data.vocabulary import Vocabulary
from tuijian.errors import ConfigError, DataError, NotFittedError

MODEL_FORMAT = "tuijian.model/1"
# Scores held at once while ranking: users-per-batch x n_items stays under this many floats.
SCORE_BUDGET = 1 << 24


class ModelConfig(BaseModel):
    """Base of every model config: frozen, validated, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    seed: int = 42


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
    """A ranked list of items for one query: external ids, indices and scores."""

    ids: np.ndarray
    idx: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                Columns.item_id: self.ids.astype(str).tolist(),
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


def rows_per_batch(n_items: int, budget: int = SCORE_BUDGET) -> int:
    """Users scored at once so that a score block stays under `budget` floats."""
    return max(1, budget // max(1, n_items))


def mask_rows(block: torch.Tensor, mask: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set `block[i, j] = -inf` where `mask[rows[i], j]` is stored (in place)."""
    sub = mask[rows]
    if sub.nnz:
        r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
        block[torch.from_numpy(r), torch.from_numpy(sub.indices.astype(np.int64))] = -torch.inf


class Recommender(ABC):
    """A fitted model ranks items for users.

    Subclasses declare `config_class`, and implement `_fit` (learn state ending in `_`) and
    `score` (a users x items block); the base provides `fit`, `recommend`, `save` and `load`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    uses_sequences: ClassVar[bool] = False
    supports_cold_items: ClassVar[bool] = False
    supports_unknown_users: ClassVar[bool] = False
    predicts_ratings: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | dict | None = None, **overrides: Any) -> None:
        self.config = build_config(self.config_class, config, overrides)

    # ---- learning --------------------------------------------------------------------------
    def fit(self, train: Dataset, *, valid: Dataset | None = None, trainer: Any = None) -> Self:
        """Learn from `train`; torch models hand their loop to `trainer` (a `Trainer`)."""
        if train.n_interactions == 0:
            raise DataError(f"{train.name}: no interactions to fit {self.name or 'model'} on")
        self.users_ = train.users
        self.items_ = train.items
        self.seen_ = (train.matrix > 0).astype(np.float32).tocsr()
        self._fit(train, valid=valid, trainer=trainer)
        return self

    @abstractmethod
    def _fit(self, train: Dataset, *, valid: Dataset | None, trainer: Any) -> None:
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

    # ---- ranking ---------------------------------------------------------------------------
    def topk(
        self,
        user_idx: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user, in batches of bounded memory.

        `exclude` is a users x items CSR whose stored entries are never returned; `candidates`
        restricts ranking to those item indices. Slots with nothing left hold index -1.
        """
        user_idx = np.asarray(user_idx, dtype=np.int64)
        if exclude is None:
            return self._rank(user_idx, None, user_idx, k, candidates, batch_size)
        return self._rank(user_idx, exclude, user_idx, k, candidates, batch_size)

    def recommend(
        self,
        users: Sequence[object] | object,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Sequence[object] | None = None,
        exclude: Sequence[object] | None = None,
    ) -> list[ItemList]:
        """Top-k items for each external user id, best first.

        Args:
            users: one external user id or a sequence of them.
            k: list length.
            exclude_seen: drop items the user interacted with in training.
            candidates: only rank these external item ids.
            exclude: never return these external item ids.
        """
        self._check_fitted()
        if isinstance(users, str | int | np.integer):
            users = [users]
        user_idx = self.users_.index(users)
        mask = (
            self.seen_[user_idx]
            if exclude_seen
            else sp.csr_matrix((len(user_idx), self.n_items), dtype=np.float32)
        )
        if exclude is not None:
            blocked = self.items_.index(exclude)
            extra = sp.csr_matrix(
                (
                    np.ones(len(user_idx) * len(blocked), dtype=np.float32),
                    (
                        np.repeat(np.arange(len(user_idx)), len(blocked)),
                        np.tile(blocked, len(user_idx)),
                    ),
                ),
                shape=mask.shape,
            )
            mask = (mask + extra).tocsr()
        cand = None if candidates is None else self.items_.index(candidates)
        idx, scores = self._rank(user_idx, mask, np.arange(len(user_idx)), k, cand)
        out = []
        for row_idx, row_scores in zip(idx, scores, strict=True):
            keep = row_idx >= 0
            out.append(ItemList(self.items_.id(row_idx[keep]), row_idx[keep], row_scores[keep]))
        return out

    def _rank(
        self,
        user_idx: np.ndarray,
        mask: sp.csr_matrix | None,
        mask_rows_idx: np.ndarray,
        k: int,
        candidates: np.ndarray | None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched score, mask, top-k; result row i is masked by `mask[mask_rows_idx[i]]`."""
        self._check_fitted()
        n_cols = self.n_items if candidates is None else len(candidates)
        if mask is not None and candidates is not None:
            mask = mask[:, candidates].tocsr()
        k_eff = min(k, n_cols)
        out_idx = np.full((len(user_idx), k), -1, dtype=np.int64)
        out_score = np.full((len(user_idx), k), -np.inf, dtype=np.float32)
        batch = batch_size or rows_per_batch(n_cols)
        for start in range(0, len(user_idx), batch):
            sl = slice(start, start + batch)
            with torch.no_grad():
                block = _as_tensor(self.score(user_idx[sl], candidates))
            if mask is not None:
                mask_rows(block, mask, mask_rows_idx[sl])
            vals, idx = torch.topk(block, k_eff, dim=1)
            idx_np = idx.numpy() if candidates is None else candidates[idx.numpy()]
            vals_np = vals.numpy()
            out_idx[sl, :k_eff] = np.where(np.isneginf(vals_np), -1, idx_np)
            out_score[sl, :k_eff] = vals_np
        return out_idx, out_score

    # ---- persistence -----------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        """Learned arrays to save: every numpy / scipy attribute whose name ends in `_`."""
        skip = {"users_", "items_", "seen_"}
        return {
            k: v
            for k, v in vars(self).items()
            if k.endswith("_") and k not in skip and isinstance(v, np.ndarray | sp.spmatrix)
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what `_get_state` returned (after vocabularies are set)."""
        for k, v in state.items():
            setattr(self, k, v)

    def save(self, path: str | Path) -> Path:
        """Write config, vocabularies, seen items and learned state to a folder."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"format": MODEL_FORMAT, "model": self.name, "config": self.config.model_dump()}
        (path / "config.json").write_text(json.dumps(meta, indent=2))
        self.users_.to_frame().write_parquet(path / "users.parquet")
        self.items_.to_frame().write_parquet(path / "items.parquet")
        sp.save_npz(path / "seen.npz", self.seen_)
        dense, sparse = {}, {}
        for key, value in self._get_state().items():
            (sparse if sp.issparse(value) else dense)[key] = value
        np.savez(path / "state.npz", **dense)
        for stale in path.glob("sparse.*.npz"):  # load() reads every sparse file in the folder
            stale.unlink()
        for key, value in sparse.items():
            sp.save_npz(path / f"sparse.{key}.npz", sp.csr_matrix(value))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load any saved model folder (the registry picks the class from `config.json`)."""
        from tuijian.models.registry import get_model_class

        path = Path(path)
        if not (path / "config.json").is_file():
            raise DataError(f"{path}: not a saved model folder (no config.json)")
        meta = json.loads((path / "config.json").read_text())
        model_cls = get_model_class(meta["model"])
        if cls is not Recommender and not issubclass(model_cls, cls):
            raise ConfigError(f"{path} holds a {meta['model']!r} model, not {cls.__name__}")
        model = model_cls(**meta["config"])
        model.users_ = Vocabulary.from_frame(pl.read_parquet(path / "users.parquet"))
        model.items_ = Vocabulary.from_frame(pl.read_parquet(path / "items.parquet"))
        model.seen_ = sp.load_npz(path / "seen.npz").tocsr()
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            state: dict[str, Any] = {k: npz[k] for k in npz.files}
        for p in path.glob("sparse.*.npz"):
            state[p.name[len("sparse.") : -len(".npz")]] = sp.load_npz(p).tocsr()
        model._set_state(state)
        return model

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({fields})"
