"""GF-CF (Shen et al., CIKM 2021): a closed-form graph filter over the normalized item graph.

    R~ = D_U^-1/2 R D_I^-1/2                         # (U, I) normalized interactions
    P~ = R~^T R~                                     # (I, I) linear low-pass filter
    s(r) = r P~ + alpha * r D_I^-1/2 V V^T D_I^1/2   # V: top-k right singular vectors of R~

Nothing is trained: the fit normalizes R and takes a truncated SVD. Up to `dense_items` items
(8,192: 268 MB in float32) the filter is one dense items x items matrix and a score is one
product; above it the model keeps the sparse R~ and the (I, k) factors and applies the filter
to each batch of histories as (r R~^T) R~ + ((alpha r D^-1/2 V) V^T) D^1/2, so memory stays
linear in the interactions (Gowalla: 0.8 M entries instead of a 40,981^2 matrix).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.sparse.linalg import svds
from sklearn.utils.extmath import randomized_svd

from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.registry import register

SvdSolver = Literal["randomized", "arpack"]
# Catalogues up to this size keep the filter as one dense float32 items x items matrix.
DENSE_ITEMS = 8192
# Matrices with at most this many users or items get an exact dense SVD instead of ARPACK.
SMALL_SVD = 64
# Power iterations and extra columns of the randomized SVD (the faster, approximate solver: on
# Gowalla at k = 256 its 256th singular value is 0.456 where ARPACK's exact one is 0.489).
RANDOMIZED_ITERATIONS = 4
RANDOMIZED_OVERSAMPLES = 64


def normalize(matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """R~ = D_U^-1/2 R D_I^-1/2 (float32 CSR) and the item scales d_I^-1/2 (0 for an item no
    user has: its column of R~ is empty)."""
    x = sp.csr_matrix(matrix, dtype=np.float32)
    user_deg = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
    item_deg = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
    user_scale = np.where(user_deg > 0, 1.0 / np.sqrt(np.maximum(user_deg, 1e-300)), 0.0)
    item_scale = np.where(item_deg > 0, 1.0 / np.sqrt(np.maximum(item_deg, 1e-300)), 0.0)
    norm = sp.diags(user_scale.astype(np.float32)) @ x @ sp.diags(item_scale.astype(np.float32))
    norm = sp.csr_matrix(norm, dtype=np.float32)
    norm.sort_indices()
    return norm, item_scale.astype(np.float32)


def top_right_singular(norm: sp.csr_matrix, k: int, solver: SvdSolver, seed: int) -> np.ndarray:
    """The top-k right singular vectors of R~ as rows of a (k, I) float32 array (k is clipped
    to what the matrix allows)."""
    k = max(1, min(k, min(norm.shape)))
    if min(norm.shape) <= max(k + 1, SMALL_SVD):  # ARPACK needs k < min(shape): dense SVD
        _, _, vt = np.linalg.svd(norm.toarray().astype(np.float64), full_matrices=False)
        vt = vt[:k]
    elif solver == "randomized":
        _, _, vt = randomized_svd(
            norm.astype(np.float64),
            k,
            n_oversamples=RANDOMIZED_OVERSAMPLES,
            n_iter=RANDOMIZED_ITERATIONS,
            random_state=seed,
        )
    else:
        rng = np.random.default_rng(seed)
        v0 = rng.standard_normal(min(norm.shape))
        _, values, vt = svds(norm.astype(np.float64), k=k, v0=v0)
        vt = vt[np.argsort(-values)]
    return np.ascontiguousarray(vt, dtype=np.float32)


@dataclass(frozen=True)
class ItemFilters:
    """The two filters of the item graph applied to a dense (Q, I) block of item signals.

    `linear(y)` = y P~ and `ideal(y)` = y D^-1/2 V V^T D^1/2, from the sparse R~ and the (I, k)
    factors, or from dense (I, I) matrices when the catalogue is small.
    """

    norm: sp.csr_matrix | None  # (U, I) R~, sparse form
    norm_t: sp.csr_matrix | None  # (I, U) R~^T
    linear_dense: np.ndarray | None  # (I, I) P~, dense form
    left: np.ndarray  # (I, k) D^-1/2 V
    right: np.ndarray  # (k, I) V^T D^1/2

    @classmethod
    def build(cls, norm: sp.csr_matrix, item_scale: np.ndarray, vt: np.ndarray, dense: bool):
        """Filters of R~ with singular vectors `vt` (k, I); `dense` holds P~ as an array."""
        safe = np.where(item_scale > 0, item_scale, 1.0)
        left = np.ascontiguousarray((vt * item_scale[None, :]).T)  # (I, k)
        right = np.ascontiguousarray(vt * np.where(item_scale > 0, 1.0 / safe, 0.0)[None, :])
        if dense:
            gram = (norm.T @ norm).toarray().astype(np.float32)  # (I, I)
            return cls(None, None, gram, left, right)
        return cls(norm, norm.T.tocsr(), None, left, right)

    def linear(self, y: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """y P~ for a (Q, I) block, as a dense float32 array."""
        if self.linear_dense is not None:
            return np.asarray(y @ self.linear_dense, dtype=np.float32)
        if sp.issparse(y):
            users = (y @ self.norm_t).toarray()  # (Q, U)
        else:
            users = np.asarray(self.norm @ np.asarray(y, np.float32).T).T  # (Q, U)
        return np.ascontiguousarray((self.norm_t @ users.T).T, dtype=np.float32)  # (Q, I)

    def ideal(self, y: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """y D^-1/2 V V^T D^1/2 for a (Q, I) block, as a dense float32 array."""
        return np.asarray((y @ self.left) @ self.right, dtype=np.float32)


class FilterConfig(ModelConfig):
    """What every item-graph filter shares: the rank of the ideal low-pass term, the SVD
    solver, and the largest catalogue whose whole filter is held as one dense matrix."""

    n_factors: int = Field(256, gt=0)
    svd: SvdSolver = "arpack"
    dense_items: int = Field(DENSE_ITEMS, ge=0)


FilterConfigT = TypeVar("FilterConfigT", bound=FilterConfig)


class GraphFilter(Recommender[FilterConfigT]):
    """A training-free filter of histories over the normalized item graph.

    The fit normalizes R and takes the top singular vectors of R~; a subclass says, in
    `apply`, how a block of histories is filtered. Every filter here is linear in the history,
    so for a catalogue up to `dense_items` the whole filter is computed once as the (I, I)
    matrix `apply(identity)` and a score is one product; larger catalogues apply it per batch.
    History-native: a history given at call time is filtered exactly as a training row.
    """

    history_mode = "native"

    state_fields = ("norm_", "item_scale_", "singular_vectors_")
    dense_matrices: ClassVar[int] = 1  # items x items float32 arrays alive while building

    @classmethod
    def fit_memory(cls, n_items: int) -> int | None:
        """Only a catalogue up to the default `dense_items` holds items x items arrays."""
        if n_items > cls.config_class().dense_items:
            return None
        return cls.dense_matrices * n_items * n_items * 4

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        cfg = self.config
        self.norm_, self.item_scale_ = normalize(train.matrix)
        self.singular_vectors_ = top_right_singular(self.norm_, cfg.n_factors, cfg.svd, cfg.seed)
        self.__dict__.pop("_filters", None)
        self.__dict__.pop("_weights", None)
        _ = self.dense_weights  # a small catalogue's whole filter, built in the fit's time

    @abstractmethod
    def apply(self, history: np.ndarray | sp.csr_matrix, filters: ItemFilters) -> np.ndarray:
        """Filtered scores (Q, I) of a (Q, I) block of histories."""

    @property
    def uses_dense(self) -> bool:
        """Whether the whole filter is held as one dense items x items matrix."""
        return self.norm_.shape[1] <= self.config.dense_items

    @property
    def filters(self) -> ItemFilters:
        """The item filters, built once from the learned state (dense below `dense_items`)."""
        cached = self.__dict__.get("_filters")
        if cached is None or cached.left.shape[0] != self.norm_.shape[1]:
            cached = ItemFilters.build(
                self.norm_, self.item_scale_, self.singular_vectors_, self.uses_dense
            )
            self.__dict__["_filters"] = cached
            self.__dict__.pop("_weights", None)
        return cached

    @property
    def dense_weights(self) -> np.ndarray | None:
        """The filter as one (I, I) matrix, `apply(identity)`, for a small catalogue; else None."""
        if not self.uses_dense:
            return None
        cached = self.__dict__.get("_weights")
        if cached is None:
            identity = np.eye(self.norm_.shape[1], dtype=np.float32)
            cached = np.ascontiguousarray(self.apply(identity, self.filters), dtype=np.float32)
            self.__dict__["_weights"] = cached
        return cached

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Filtered training rows, shape (len(user_idx), n_items or len(item_idx))."""
        return self.score_history(self.user_items_[user_idx], item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """Filtered history rows, shape (Q, n_items or len(item_idx))."""
        weights = self.dense_weights
        if weights is not None:
            weights = weights if item_idx is None else weights[:, item_idx]
            return np.asarray(history @ weights, dtype=np.float32)
        out = self.apply(history, self.filters)
        return out if item_idx is None else out[:, item_idx]


class GFCFConfig(FilterConfig):
    """Weight of the ideal low-pass term (the paper's 0.3 on Gowalla and Yelp2018; its rank,
    `n_factors`, is the paper's 256)."""

    alpha: float = Field(0.3, ge=0)


@register("gfcf")
class GFCF(GraphFilter[GFCFConfig]):
    """Scores a history by the linear item-graph filter plus alpha x the ideal low-pass one."""

    test_config: ClassVar[dict[str, Any]] = {"n_factors": 4}

    def apply(self, history: np.ndarray | sp.csr_matrix, filters: ItemFilters) -> np.ndarray:
        """r P~ + alpha r D^-1/2 V V^T D^1/2 for each row r."""
        out = filters.linear(history)
        if self.config.alpha:
            out += np.float32(self.config.alpha) * filters.ideal(history)
        return out
