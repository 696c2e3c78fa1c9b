"""ContentBased: TF-IDF item vectors from title, text and categories; users are mean profiles.

Scores are the profile's similarity times a popularity prior, (1 + training users)^exponent:
text tells which items resemble the history (mostly: which category), not which of those
hundreds of similar items people take, and without the prior the model ranked the long tail
of each category first (NDCG@10 0.019 against popularity's 0.067 on the synthetic shop,
0.158 with exponent 1). Cold items have no users, so among them the order is the text alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from pydantic import Field

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset
from tuijian.data.split import Validation
from tuijian.errors import DataError
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.registry import register

C = Columns
TEXT_COLUMNS = (C.title, C.text, C.categories)


class ContentConfig(ModelConfig):
    """ContentBased settings: the TF-IDF vocabulary and term weighting."""

    max_features: int | None = Field(50_000, gt=0)
    min_df: int = Field(1, ge=1)
    max_ngram: int = Field(1, ge=1, le=3)
    sublinear_tf: bool = True
    english_stop_words: bool = False
    popularity_exponent: float = Field(1.0, ge=0)  # 0: similarity alone


def item_documents(features: pl.DataFrame | None, dataset: Dataset) -> list[str]:
    """One text per item index: title, text and categories joined; empty for items without rows."""
    present = [] if features is None else [c for c in TEXT_COLUMNS if c in features.columns]
    if features is None or C.item_id not in features.columns or not present:
        raise DataError(
            f"{dataset.name}: content needs item features (title/text/categories) keyed by "
            f"{C.item_id}"
        )
    parts = []
    for col in present:
        expr = pl.col(col)
        if isinstance(features.schema[col], pl.List):
            expr = expr.cast(pl.List(pl.Utf8)).list.join(" ")
        parts.append(expr.cast(pl.Utf8).fill_null(""))
    docs = features.select(
        dataset.items.lookup(features[C.item_id]).alias(C.item_idx),
        pl.concat_str(parts, separator=" ").alias("doc"),
    ).drop_nulls(C.item_idx)
    docs = docs.group_by(C.item_idx).agg(pl.col("doc").str.join(" "))
    out = np.full(dataset.n_items, "", dtype=object)
    out[docs[C.item_idx].to_numpy()] = docs["doc"].to_numpy()
    return out.tolist()


@register("content")
class ContentBased(Recommender[ContentConfig]):
    """Scores items by the dot product of their TF-IDF vector with the user's mean profile,
    times the popularity prior (1 + training users)^popularity_exponent.

    History-native: a given history's profile is its weight-averaged item vectors, as in fit.
    """

    history_mode = "native"

    state_fields = ("item_vectors_", "user_profiles_")
    supports_cold_items = True

    def _fit(self, train: Dataset, *, valid: Validation | None, trainer: Any) -> None:
        # Imported here: scikit-learn takes a second to import and only this model needs it.
        from sklearn.feature_extraction.text import TfidfVectorizer

        cfg = self.config
        vectorizer = TfidfVectorizer(
            max_features=cfg.max_features,
            min_df=cfg.min_df,
            ngram_range=(1, cfg.max_ngram),
            sublinear_tf=cfg.sublinear_tf,
            stop_words="english" if cfg.english_stop_words else None,
            dtype=np.float32,
        )
        try:
            vectors = vectorizer.fit_transform(item_documents(train.item_features, train))
        except ValueError as exc:  # every document empty, or min_df prunes every term
            raise DataError(f"{train.name}: no usable terms in item features ({exc})") from None
        self.item_vectors_ = sp.csr_matrix(vectors, dtype=np.float32)  # (I, T), rows L2-normed
        self.user_profiles_ = self.profiles(train.matrix)

    def profiles(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """(Q, T) weight-averaged TF-IDF vectors of each history row's items."""
        totals = np.asarray(history.sum(axis=1), dtype=np.float64).ravel()
        inv = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals != 0)
        weights = sp.diags(inv.astype(np.float32)) @ history  # rows sum to 1
        return sp.csr_matrix(weights @ self.item_vectors_, dtype=np.float32)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Profile . item vector, shape (len(user_idx), n_items or len(item_idx))."""
        return self._score_profiles(self.user_profiles_[user_idx], item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """Profile of each history row . item vectors, shape (Q, n_items or len(item_idx))."""
        return self._score_profiles(self.profiles(history), item_idx)

    def _score_profiles(self, profiles: sp.csr_matrix, item_idx: np.ndarray | None) -> np.ndarray:
        items = self.item_vectors_ if item_idx is None else self.item_vectors_[item_idx]
        scores = np.asarray((profiles @ items.T).toarray(), dtype=np.float32)
        beta = self.config.popularity_exponent
        if beta:
            pop = self.item_popularity_ if item_idx is None else self.item_popularity_[item_idx]
            scores *= np.power(1.0 + pop, beta, dtype=np.float32)[None, :]
        return scores
