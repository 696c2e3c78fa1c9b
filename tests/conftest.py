"""Shared fixtures: tiny hand-made datasets and the location of the real shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from threadpoolctl import threadpool_limits

from tuijian.data import Columns, Dataset, PrepareConfig, Split, build_dataset, prepare
from tuijian.data.split import random_split, user_holdout_split
from tuijian.data.synthetic import shop_dataset

C = Columns
# One thread for torch and BLAS: the suite runs on 2 shared cores, where two threads per
# process wait on each other and run many times slower.
torch.set_num_threads(1)
threadpool_limits(1)

SHARED_DATA = Path(
    os.environ.get("TUIJIAN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


SHOP_WEIGHTS = {"view": 1.0, "cart": 3.0, "buy": 5.0}
"""Event weights of the synthetic shop (as `tuijian data synth` uses them)."""


def shared_path(*parts: str) -> Path:
    """A path inside ../shared/data, or skip the test when it is absent (fresh clones)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset not available: {path}")
    return path


@pytest.fixture
def tiny_frame() -> pl.DataFrame:
    """6 users x 8 items with timestamps; user u5 has two items only."""
    rows = [
        ("u0", "i0", 1), ("u0", "i1", 2), ("u0", "i2", 3), ("u0", "i3", 4),
        ("u1", "i0", 1), ("u1", "i1", 2), ("u1", "i4", 3),
        ("u2", "i2", 1), ("u2", "i3", 2), ("u2", "i5", 3), ("u2", "i6", 4),
        ("u3", "i4", 1), ("u3", "i5", 2), ("u3", "i6", 3), ("u3", "i7", 4),
        ("u4", "i0", 1), ("u4", "i2", 2), ("u4", "i7", 3),
        ("u5", "i1", 1), ("u5", "i3", 2),
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=[C.user_id, C.item_id, C.timestamp], orient="row")


@pytest.fixture
def tiny_dataset(tiny_frame: pl.DataFrame) -> Dataset:
    titles = pl.DataFrame(
        {
            C.item_id: [f"i{j}" for j in range(8)],
            C.title: [f"item {j}" for j in range(8)],
            C.categories: [["a"] if j < 4 else ["b"] for j in range(8)],
        }
    )
    return build_dataset(tiny_frame, item_features=titles, name="tiny")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---- the synthetic shop, built once per session and shared by the model tests ----------------
@pytest.fixture(scope="session")
def shop_data() -> Dataset:
    """The tiny synthetic shop (300 users, 150 items, titles and categories), events weighted
    view 1, cart 3, buy 5."""
    raw = shop_dataset("tiny")
    frame, _ = prepare(raw.interactions, PrepareConfig(event_weights=SHOP_WEIGHTS))
    return build_dataset(frame, item_features=raw.item_features, name="shop")


@pytest.fixture(scope="session")
def shop_split(shop_data: Dataset) -> Split:
    """The shop split 8:1:1 per user at random (seed 0)."""
    return random_split(shop_data, (0.8, 0.1, 0.1), seed=0)


@pytest.fixture(scope="session")
def shop_users_split(shop_data: Dataset) -> Split:
    """The shop with 10 % valid and 10 % test users held out (30 each), 80 % of each held-out
    user's rows as the query history (seed 0)."""
    return user_holdout_split(shop_data, valid=0.1, test=0.1, query_fraction=0.8, seed=0)
