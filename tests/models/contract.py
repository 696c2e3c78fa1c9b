"""Contract checks every registered Recommender must pass, and a tiny ml-100k benchmark helper.

Call the `check_*` functions from any model test; `TINY_CONFIGS` holds the overrides that make a
model fit in well under a second on `contract_dataset()` (models absent from it use `{}`).
"""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

from tests.conftest import shared_path
from tuijian.data import Columns, Dataset, build_dataset
from tuijian.errors import ConfigError, NotFittedError, UnknownIdError
from tuijian.models.base import Recommender
from tuijian.models.registry import get_model, get_model_class

C = Columns

# Model name -> config overrides for a fast fit on the contract dataset. Add your model here.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "als": {"factors": 8, "iterations": 3, "num_threads": 1},
    "autorec": {"hidden_size": 8, "epochs": 2, "ratings": "weight", "threads": 1},
    "bpr": {"embedding_size": 8, "epochs": 2, "threads": 1},
    "biasedmf": {"embedding_size": 8, "epochs": 2, "ratings": "weight", "threads": 1},
    "cdae": {"embedding_size": 8, "epochs": 2, "threads": 1},
    "ease": {"l2": 5.0},
    "gmf": {"embedding_size": 8, "epochs": 2, "threads": 1},
    "itemknn": {"k_neighbors": 5},
    "lightgcn": {"embedding_size": 8, "epochs": 2, "threads": 1},
    "mlp": {"embedding_size": 8, "mlp_layers": (16, 8), "epochs": 2, "threads": 1},
    "multdae": {"hidden_sizes": (16,), "latent_size": 8, "epochs": 2, "threads": 1},
    "multvae": {"hidden_sizes": (16,), "latent_size": 8, "epochs": 2, "threads": 1},
    "neumf": {"embedding_size": 8, "mlp_layers": (16, 8), "epochs": 2, "threads": 1},
    "ngcf": {"embedding_size": 8, "layer_sizes": (8, 8), "epochs": 2, "threads": 1},
    "userknn": {"k_neighbors": 4},
}

N_GROUP_USERS = 6  # users per taste group in the contract dataset
N_GROUP_ITEMS = 6  # items per taste group; one more item exists only in the feature table
COLD_ITEM = "i99"
UNKNOWN_USER = "no-such-user"


def tiny_config(name: str) -> dict[str, Any]:
    """A copy of the tiny-fit overrides for model `name` ({} when it has none)."""
    return dict(TINY_CONFIGS.get(name, {}))


def contract_dataset() -> Dataset:
    """Two taste groups of 6 users x 6 items, timestamps, weights, features and one cold item."""
    rng = np.random.default_rng(0)
    rows = []
    for group in range(2):
        for u in range(N_GROUP_USERS):
            own = rng.choice(N_GROUP_ITEMS, size=4, replace=False) + group * N_GROUP_ITEMS
            other = rng.integers(N_GROUP_ITEMS) + (1 - group) * N_GROUP_ITEMS
            for t, item in enumerate([*own.tolist(), int(other)]):
                rows.append((f"u{group * N_GROUP_USERS + u:02d}", f"i{item:02d}", t, 1.0 + t % 2))
    frame = pl.DataFrame(rows, schema=[C.user_id, C.item_id, C.timestamp, C.weight], orient="row")
    n_items = 2 * N_GROUP_ITEMS
    words = ["space rocket galaxy", "love story romance"]
    features = pl.DataFrame(
        {
            C.item_id: [f"i{j:02d}" for j in range(n_items)] + [COLD_ITEM],
            C.title: [f"{words[j // N_GROUP_ITEMS]} part {j}" for j in range(n_items)]
            + ["galaxy rocket saga"],
            C.categories: [["scifi"] if j < N_GROUP_ITEMS else ["drama"] for j in range(n_items)]
            + [["scifi"]],
        }
    )
    return build_dataset(frame, item_features=features, name="contract")


def make_model(name: str, **overrides: Any) -> Recommender:
    """An unfitted model with its tiny config plus `overrides`."""
    return get_model(name, **{**tiny_config(name), **overrides})


def fit_tiny(name: str, data: Dataset, **overrides: Any) -> Recommender:
    """Fit model `name` with its tiny config on `data`; checks that fit returns the model."""
    model = make_model(name, **overrides)
    fitted = model.fit(data)
    assert fitted is model
    assert model.is_fitted
    return model


def as_numpy(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """Scores as a float32 numpy array, whatever `score` returned."""
    if isinstance(scores, torch.Tensor):
        return scores.detach().cpu().numpy().astype(np.float32)
    return np.asarray(scores)


def all_scores(model: Recommender, data: Dataset) -> np.ndarray:
    """Scores of every user for every item."""
    return as_numpy(model.score(np.arange(data.n_users)))


def seen_ids(data: Dataset, user: str) -> set[str]:
    """External ids of the items `user` interacted with in `data`."""
    row = data.matrix[data.users.index(user)[0]]
    return set(data.items.id(row.indices).tolist())


def check_scores(model: Recommender, data: Dataset) -> None:
    """`score` gives finite float32 users x items blocks, consistent on item subsets, and new."""
    users = np.arange(data.n_users)
    full = as_numpy(model.score(users))
    assert full.shape == (data.n_users, data.n_items)
    assert full.dtype == np.float32
    assert np.isfinite(full).all()
    subset = np.array([data.n_items - 1, 0, 3])
    part = as_numpy(model.score(users[:5], subset))
    assert part.shape == (5, 3)
    np.testing.assert_allclose(part, full[:5][:, subset], rtol=1e-5, atol=1e-6)
    full[:] = -1.0  # mutating a returned block must not change the model
    np.testing.assert_allclose(as_numpy(model.score(users[:5], subset)), part, rtol=1e-6)


def check_recommend(model: Recommender, data: Dataset, k: int = 5) -> None:
    """k known, distinct ids per user with non-increasing scores matching `score`."""
    users = data.users.ids.tolist()
    lists = model.recommend(users, k)
    assert len(lists) == len(users)
    scores = all_scores(model, data)
    for row, items in enumerate(lists):
        assert len(items) == k
        assert len(set(items.ids.tolist())) == k
        assert np.all(np.diff(items.scores) <= 1e-6)
        np.testing.assert_array_equal(data.items.index(items.ids), items.idx)
        np.testing.assert_allclose(items.scores, scores[row, items.idx], rtol=1e-5, atol=1e-6)
    frame = lists[0].to_frame()
    assert frame.columns == [C.item_id, C.score, C.rank]
    assert model.recommend(users[0], k)[0].ids.tolist() == lists[0].ids.tolist()


def check_exclude_seen(model: Recommender, data: Dataset) -> None:
    """Seen items never come back with exclude_seen=True; with False every item can."""
    n = data.n_items
    for user in data.users.ids.tolist():
        seen = seen_ids(data, user)
        (unseen_list,) = model.recommend(user, n)
        assert not seen & set(unseen_list.ids.tolist())
        assert len(unseen_list) == n - len(seen)
        (all_list,) = model.recommend(user, n, exclude_seen=False)
        assert set(all_list.ids.tolist()) == set(data.items.ids.tolist())


def check_candidates(model: Recommender, data: Dataset) -> None:
    """`candidates` restricts ranking to the given ids (minus seen ones when excluding)."""
    candidates = [*data.items.ids[::2].tolist(), COLD_ITEM]
    for user in data.users.ids[:4].tolist():
        (items,) = model.recommend(user, len(candidates), candidates=candidates)
        assert set(items.ids.tolist()) == set(candidates) - seen_ids(data, user)
        (items,) = model.recommend(user, 2, candidates=candidates, exclude_seen=False)
        assert len(items) == 2
        assert set(items.ids.tolist()) <= set(candidates)


def check_exclude(model: Recommender, data: Dataset, k: int = 4) -> None:
    """`exclude` blocks ids that would otherwise be at the top of the list."""
    for user in data.users.ids[:4].tolist():
        (top,) = model.recommend(user, k)
        blocked = top.ids[:2].tolist()
        (items,) = model.recommend(user, k, exclude=blocked)
        assert len(items) == k
        assert not set(blocked) & set(items.ids.tolist())


def check_unknown_user(model: Recommender) -> None:
    """An unknown user id raises `UnknownIdError` whose message names the id."""
    with pytest.raises(UnknownIdError, match=re.escape(UNKNOWN_USER)):
        model.recommend([UNKNOWN_USER], 3)


def check_not_fitted(name: str) -> None:
    """Recommending before `fit` raises `NotFittedError`."""
    with pytest.raises(NotFittedError):
        make_model(name).recommend(["u00"], 3)


def check_save_load(model: Recommender, data: Dataset, path: Path) -> None:
    """save -> `Recommender.load` restores the class, config, scores and lists."""
    model.save(path)
    loaded = Recommender.load(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    np.testing.assert_allclose(all_scores(loaded, data), all_scores(model, data), rtol=1e-6)
    users = data.users.ids.tolist()
    for a, b in zip(model.recommend(users, 5), loaded.recommend(users, 5), strict=True):
        assert a.ids.tolist() == b.ids.tolist()


def check_unknown_config_key(name: str) -> None:
    """An unknown config key raises `ConfigError` naming it and listing the valid keys."""
    with pytest.raises(ConfigError) as info:
        get_model(name, no_such_key=1)
    message = str(info.value)
    assert "no_such_key" in message
    for key in get_model_class(name).config_class.model_fields:
        assert key in message


def check_seed_reproducible(name: str, data: Dataset) -> None:
    """Two fits with the same seed give the same scores."""
    first = all_scores(fit_tiny(name, data, seed=7), data)
    second = all_scores(fit_tiny(name, data, seed=7), data)
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)


def check_contract(name: str, data: Dataset, path: Path) -> Recommender:
    """Every check above for model `name`; returns the fitted model."""
    check_not_fitted(name)
    check_unknown_config_key(name)
    model = fit_tiny(name, data)
    check_scores(model, data)
    check_recommend(model, data)
    check_exclude_seen(model, data)
    check_candidates(model, data)
    check_exclude(model, data)
    check_unknown_user(model)
    check_save_load(model, data, path)
    check_seed_reproducible(name, data)
    return model


# ---- ml-100k: does a model beat popularity on real structure? ------------------------------


def ml100k_item_features() -> pl.DataFrame:
    """Titles and genre lists of ml-100k (u.item is latin-1, `|`-separated)."""
    genres = (
        pl.read_csv(
            shared_path("ml-100k", "u.genre"), separator="|", has_header=False, quote_char=None
        )[:, 0]
        .drop_nulls()
        .to_list()
    )
    text = shared_path("ml-100k", "u.item").read_bytes().decode("latin-1")
    raw = pl.read_csv(io.StringIO(text), separator="|", has_header=False, quote_char=None)
    flags = raw.select(raw.columns[5:]).to_numpy().astype(bool)  # (I, 19)
    names = np.array(genres, dtype=object)
    categories = [names[row].tolist() for row in flags]
    return pl.DataFrame(
        {
            C.item_id: raw[raw.columns[0]].cast(pl.Utf8),
            C.title: raw[raw.columns[1]],
            C.categories: categories,
        }
    )


@functools.cache
def ml100k_split(seed: int = 0) -> tuple[Dataset, sp.csr_matrix]:
    """All ml-100k ratings as implicit feedback, split 80/20 per user at random (seeded).

    Returns the train Dataset (with item features) and a binary users x items test matrix.
    """
    frame = pl.read_csv(
        shared_path("ml-100k", "u.data"),
        separator="\t",
        has_header=False,
        new_columns=[C.user_id, C.item_id, C.rating, C.timestamp],
    )
    order = np.random.default_rng(seed).random(frame.height)
    frame = frame.with_columns(pl.Series("__key", order)).with_columns(
        pl.col("__key").rank("ordinal").over(C.user_id).alias("__pos"),
        pl.len().over(C.user_id).alias("__n"),
    )
    in_train = pl.col("__pos") <= (0.8 * pl.col("__n")).round()
    keep = [C.user_id, C.item_id, C.timestamp]
    train = build_dataset(
        frame.filter(in_train).select(keep),
        item_features=ml100k_item_features(),
        name="ml-100k-train",
    )
    test = frame.filter(~in_train)
    rows = train.users.lookup(test[C.user_id].cast(pl.Utf8)).to_numpy()
    cols = train.items.lookup(test[C.item_id].cast(pl.Utf8)).to_numpy()
    truth = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(train.n_users, train.n_items)
    )
    return train, truth


@functools.cache
def ml100k_cold_split(seed: int = 0, fraction: float = 0.2) -> tuple[Dataset, sp.csr_matrix]:
    """ml-100k with a seeded `fraction` of items made cold: all their ratings move to the truth.

    Returns the warm train Dataset (same vocabularies and item features) and a binary
    users x items matrix of every rating of a cold item; rank with candidates = cold items.
    """
    train, truth = ml100k_split(seed)
    cold = np.random.default_rng(seed).random(train.n_items) < fraction
    everything = (train.matrix + truth).tocoo()
    on_cold = cold[everything.col]
    cold_truth = sp.csr_matrix(
        (
            np.ones(on_cold.sum(), dtype=np.float32),
            (everything.row[on_cold], everything.col[on_cold]),
        ),
        shape=everything.shape,
    )
    warm = train.with_interactions(
        train.interactions.filter(~pl.col(C.item_idx).is_in(np.flatnonzero(cold).tolist())),
        name="ml-100k-warm",
    )
    return warm, cold_truth


def ndcg_at_k(
    model: Recommender,
    train: Dataset,
    truth: sp.csr_matrix,
    k: int = 10,
    candidates: np.ndarray | None = None,
) -> float:
    """Mean NDCG@k of users with test items: full (or `candidates`) ranking, train excluded."""
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    top, _ = model.topk(users, k, exclude=train.matrix, candidates=candidates)  # (U, k), -1 = none
    relevant = truth[users].toarray() > 0
    hits = np.take_along_axis(relevant, np.maximum(top, 0), axis=1) & (top >= 0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts
    ideal = np.cumsum(discounts)[np.minimum(relevant.sum(axis=1), k) - 1]
    return float(np.mean(dcg / ideal))


def fit_quietly(name: str, train: Dataset, **overrides: Any) -> Recommender:
    """Fit with BLAS held to one thread, so tests stay fast on a small shared machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        return get_model(name, **overrides).fit(train)


@functools.cache
def _ml100k_ndcg(name: str, overrides: tuple[tuple[str, Any], ...], cold: bool) -> float:
    train, truth = ml100k_cold_split() if cold else ml100k_split()
    model = fit_quietly(name, train, **dict(overrides))
    candidates = np.flatnonzero(train.item_popularity == 0) if cold else None
    return ndcg_at_k(model, train, truth, candidates=candidates)


def ml100k_ndcg(name: str, *, cold: bool = False, **overrides: Any) -> float:
    """NDCG@10 of model `name` on the seeded ml-100k split (or cold-item split); cached per run.

    With `cold=True` users are ranked only over the cold items, which nobody rated in training.
    """
    return _ml100k_ndcg(name, tuple(sorted(overrides.items())), cold)
