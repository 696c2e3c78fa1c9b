"""What the routes call: a loaded model with its catalogue, turning stored events and request
fields into `Query`s, and explanations by leave-one-out on the history.

A user's history at serving time is their training history (when the model knows them) plus
the events stored since, oldest first, weighted like the training data (`prepare.json`'s event
weights): the model excludes those items as seen and scores the whole history, natively or by
folding it in, so a new event changes the next answer with no retraining.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from tuijian.data.columns import Columns as C
from tuijian.errors import UnknownIdError
from tuijian.models.base import ItemList, Recommender
from tuijian.models.query import Query, QueryBatch
from tuijian.models.ranking import rank
from tuijian.models.sequential.base import SequenceRecommender
from tuijian.models.vectors import DotProduct
from tuijian.serving.ann import ANN_MIN_ITEMS, VectorIndex
from tuijian.serving.events import Event

EXPLAIN_ROWS = 256
"""Leave-one-out histories scored at once by `explain` (bounds its memory on long histories)."""


@dataclass(frozen=True)
class Catalogue:
    """What the data folder a model was fitted on says about items and events."""

    titles: dict[str, str]
    categories: dict[str, tuple[str, ...]]
    event_weights: dict[str, float]

    @classmethod
    def empty(cls) -> Catalogue:
        return cls({}, {}, {})

    @classmethod
    def of_model(cls, model_dir: Path) -> Catalogue:
        """The catalogue of the data folder recorded in the model's `fit.json`, if still there."""
        record = model_dir / "fit.json"  # written beside the model by `tuijian train`
        data = Path(json.loads(record.read_text())["data"]) if record.is_file() else None
        if data is None or not data.is_dir():
            return cls.empty()
        titles: dict[str, str] = {}
        categories: dict[str, tuple[str, ...]] = {}
        features = data / "item_features.parquet"
        if features.is_file():
            frame = pl.read_parquet(features)
            ids = frame[C.item_id].cast(pl.Utf8).to_list()
            if C.title in frame.columns:
                titles = {i: t for i, t in zip(ids, frame[C.title].to_list(), strict=True) if t}
            if C.categories in frame.columns:
                cats = frame[C.categories].to_list()
                categories = {i: tuple(c) for i, c in zip(ids, cats, strict=True) if c}
        weights: dict[str, float] = {}
        prepare = data / "prepare.json"
        if prepare.is_file():
            weights = json.loads(prepare.read_text())["config"].get("event_weights") or {}
        return cls(titles, categories, {str(k): float(v) for k, v in weights.items()})


def model_version(model_dir: Path) -> str:
    """A short stamp of a saved model folder: it changes whenever the folder is rewritten."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for name in ("config.json", "state.json"):
        if (model_dir / name).is_file():
            digest.update((model_dir / name).read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Served:
    """One loaded model version; immutable, so a reload swaps the whole object at once."""

    model: Recommender
    version: str
    catalogue: Catalogue
    index: VectorIndex | None = field(default=None, repr=False)

    @classmethod
    def load(cls, model_dir: Path, ann_min_items: int = ANN_MIN_ITEMS) -> Served:
        """The saved model with its catalogue; a dot-product model over at least
        `ann_min_items` items also gets a vector index of its item vectors."""
        model = Recommender.load(model_dir)
        index = None
        if isinstance(model, DotProduct) and model.n_items >= ann_min_items:
            index = VectorIndex.build(model.item_vectors())
        return cls(model, model_version(model_dir), Catalogue.of_model(model_dir), index)

    @property
    def label(self) -> str:
        """`model@version`, the source of every list this model produced."""
        return f"{self.model.name}@{self.version}"

    # ---- queries ---------------------------------------------------------------------------
    def check_items(self, ids: Sequence[str]) -> None:
        """Raise `UnknownIdError` naming the first item id the model does not know."""
        missing = self.model.items_.index_or_missing(list(ids)) < 0
        if missing.any():
            raise UnknownIdError(f"unknown item: {list(ids)[int(missing.argmax())]!r}")

    def category_items(self, category: str) -> list[str]:
        """The model's items in `category`; `UnknownIdError` when no item has it."""
        known = self.model.items_
        found = [
            i for i, cats in self.catalogue.categories.items() if category in cats and i in known
        ]
        if not found:
            raise UnknownIdError(f"unknown category: {category!r}")
        return found

    def query(
        self,
        user_id: str | None,
        events: Sequence[Event] = (),
        session: Sequence[str] = (),
        *,
        candidates: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        category: str | None = None,
    ) -> Query:
        """The query of a user (known to the model or not) with their stored events, then the
        session's items; a category narrows the candidates."""
        self.check_items([*session, *(candidates or ()), *exclude])
        if category is not None:
            in_category = self.category_items(category)
            candidates = (
                in_category if candidates is None else sorted(set(candidates) & set(in_category))
            )
        weight = self.catalogue.event_weights
        items = [e.item_id for e in events] + list(session)
        last = events[-1].timestamp if events else 0.0
        known = user_id is not None and user_id in self.model.users_
        return Query(
            user_id=user_id if known else None,
            items=items,
            weights=[weight.get(e.event, 1.0) for e in events] + [1.0] * len(session),
            timestamps=[e.timestamp for e in events] + [last] * len(session),
            events=[e.event for e in events] + ["view"] * len(session),
            candidates=candidates,
            exclude=exclude,
        )

    def recommend(self, query: Query, k: int) -> ItemList:
        """The model's top-k for one query (exclude seen); a known user with nothing added
        skips indexing a `Query` (1.9 -> 1.2 ms at 50,000 items, docs/benchmarks/serving.md)."""
        model = self.model
        if self.index is not None and query.candidates is None:
            return self._search(query, k)
        plain = not query.items and not query.exclude and query.candidates is None
        if query.user_id is not None and plain:
            users = model.users_.index([query.user_id])
            return model.item_lists(rank(model, QueryBatch.for_users(model, users), k))[0]
        (items,) = model.recommend([query], k)
        return items

    def _search(self, query: Query, k: int) -> ItemList:
        """Top-k from the vector index: the query's vector (learned or folded in) searched
        with its history and exclusions left out; an empty history gets the fallback."""
        model = self.model
        assert isinstance(model, DotProduct) and self.index is not None
        batch = QueryBatch.build(model, [query])
        if batch.empty[0]:
            (items,) = model.recommend([query], k)
            return items
        excluded = batch.history.indices
        if batch.exclude is not None:
            excluded = np.union1d(excluded, batch.exclude.indices)
        idx, scores = self.index.search(model.query_vectors(batch), k, [excluded])
        keep = idx[0] >= 0
        found = idx[0][keep]
        return ItemList(model.items_.id(found), found, scores[0][keep], model.name)

    def similar(self, item_id: str, k: int) -> ItemList:
        """Items the model ranks first for a session of `item_id` alone (the item left out)."""
        self.check_items([item_id])
        return self.recommend(Query(items=[item_id], exclude=[item_id]), k)

    # ---- explanations ----------------------------------------------------------------------
    def explain(self, query: Query, item_id: str) -> tuple[float, np.ndarray, np.ndarray]:
        """Score of `item_id` for the query's whole history, and each history item with the
        score it loses when that item alone is left out (largest first).

        For neighbourhood and linear models (item-kNN, EASE) the loss is exactly the item's
        similarity contribution; factor models with a ridge fold-in (ALS, BPR-MF, LightGCN)
        give each history item's exact share of the folded-in dot product instead; other models
        the change of the score without the item. An empty history returns empty arrays (the
        popularity fallback). Sequence models leave out one step of the ordered session at a
        time instead (`_explain_sequence`).
        """
        self.check_items([item_id])
        model = self.model
        target = model.items_.index([item_id])
        if isinstance(model, SequenceRecommender):
            return _explain_sequence(model, query, target)
        history = QueryBatch.build(model, [query]).history  # (1, I)
        n = history.nnz
        if n == 0 or model.history_mode in (None, "none"):
            pop = float(model.item_popularity_[target[0]])
            return pop, np.zeros(0, np.int64), np.zeros(0, np.float32)
        full = _column(model.score_history(history, target))[0]
        contributions = getattr(model, "history_contributions", None)
        if contributions is not None:  # factor models: exact dot-product shares
            drops = contributions(history, int(target[0]))
            order = np.argsort(-drops, kind="stable")
            return float(full), history.indices[order].astype(np.int64), drops[order]
        if n == 1:  # without its only item the history is empty: the item accounts for it all
            return float(full), history.indices.astype(np.int64), np.array([full], np.float32)
        drops = np.empty(n, dtype=np.float32)
        for start in range(0, n, EXPLAIN_ROWS):
            rows = np.arange(start, min(n, start + EXPLAIN_ROWS))
            drops[rows] = full - _column(model.score_history(_leave_one_out(history, rows), target))
        order = np.argsort(-drops, kind="stable")
        return float(full), history.indices[order].astype(np.int64), drops[order]


def _explain_sequence(
    model: SequenceRecommender, query: Query, target: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Leave-one-out over the positions of the sequence the model reads (the last `max_len`
    items, in order): each step left out in turn, the rest kept in order; an item seen at
    several steps keeps its largest loss."""
    seq = model.query_sequences(QueryBatch.build(model, [query]))[0]  # (L,) left-padded
    steps = np.flatnonzero(seq != model.pad)
    if len(steps) == 0:
        pop = float(model.item_popularity_[target[0]])
        return pop, np.zeros(0, np.int64), np.zeros(0, np.float32)
    full = float(_column(model.score_sequences(seq[None], target))[0])
    n, width = len(steps), len(seq)
    keep = np.ones((n, width), dtype=bool)
    keep[np.arange(n), steps] = False
    shorter = np.broadcast_to(seq, (n, width))[keep].reshape(n, width - 1)
    variants = np.concatenate([np.full((n, 1), model.pad, np.int64), shorter], axis=1)
    drops = full - _column(model.score_sequences(variants, target))
    order = np.argsort(-drops, kind="stable")
    first = np.unique(seq[steps][order], return_index=True)[1]
    best = np.sort(first)  # the largest loss of each item, largest first
    return full, seq[steps][order][best].astype(np.int64), drops[order][best]


def _column(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """(Q,) float32 of a (Q, 1) score block."""
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().to("cpu", torch.float32).numpy()
    return np.asarray(scores, dtype=np.float32)[:, 0]


def _leave_one_out(history: sp.csr_matrix, drop: np.ndarray) -> sp.csr_matrix:
    """(len(drop), I): the one-row `history` repeated, row r without its entry `drop[r]`."""
    n, m = history.nnz, len(drop)
    keep = np.ones((m, n), dtype=bool)
    keep[np.arange(m), drop] = False
    cols = np.broadcast_to(history.indices, (m, n))[keep]
    data = np.broadcast_to(history.data, (m, n))[keep]
    indptr = np.arange(m + 1, dtype=np.int64) * (n - 1)
    return sp.csr_matrix((data, cols, indptr), shape=(m, history.shape[1]), dtype=np.float32)
