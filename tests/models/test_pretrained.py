"""Initialization from pre-trained weights: files, saved model folders and fitted models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from tests.models import contract
from tuijian.data import Columns, build_dataset
from tuijian.errors import ConfigError, DataError
from tuijian.models.classic.bpr_mf import BPRMF
from tuijian.models.pretrained import (
    PretrainedWeights,
    apply_pretrained,
    init_from_model,
    read_pretrained,
)


@pytest.fixture(scope="module")
def fitted() -> BPRMF:
    return contract.fit_tiny("bpr", contract.contract_dataset())


def test_init_from_model_copies_a_fitted_models_tables(fitted: BPRMF) -> None:
    other = contract.make_model("bpr", seed=99)
    other.fit(contract.contract_dataset())
    copied = init_from_model(other, fitted, {"item_emb.weight": "item_emb.weight"})
    assert copied == ["item_emb.weight"]
    assert torch.equal(other.module_.item_emb.weight, fitted.module_.item_emb.weight)
    assert not torch.equal(other.module_.user_emb.weight, fitted.module_.user_emb.weight)


def test_a_saved_model_folder_initializes_by_external_id(fitted: BPRMF, tmp_path: Path) -> None:
    fitted.save(tmp_path / "bpr")
    weights = read_pretrained(tmp_path / "bpr")
    assert {"user_emb.weight", "item_emb.weight"} <= set(weights.arrays)
    assert weights.items == fitted.items_
    # a model over a reordered and smaller item vocabulary: rows follow the ids
    data = contract.contract_dataset()
    frame = data.external().filter(pl.col(Columns.item_idx) >= 2)
    smaller = build_dataset(frame.select(Columns.user_id, Columns.item_id, Columns.weight))
    other = contract.make_model("bpr").fit(smaller)
    assert len(other.items_) < len(fitted.items_)
    with pytest.raises(ConfigError, match="pass rows="):
        apply_pretrained(other, weights)
    before = other.module_.item_emb.weight.detach().clone()
    apply_pretrained(other, weights, rows={"item_emb.weight": "items", "user_emb.weight": "users"})
    got = other.module_.item_emb.weight.detach()
    for row, item_id in enumerate(other.items_.ids):
        if item_id in fitted.items_:
            src = fitted.items_.index([item_id])[0]
            assert torch.equal(got[row], fitted.module_.item_emb.weight[src])
        else:
            assert torch.equal(got[row], before[row])


def test_npz_and_npy_sources(fitted: BPRMF, tmp_path: Path) -> None:
    table = fitted.module_.item_emb.weight.detach().numpy()
    order = np.arange(len(table))[::-1]  # rows stored in reverse id order, with their ids
    np.savez(
        tmp_path / "items.npz",
        **{"item_emb.weight": table[order], Columns.item_id: fitted.items_.ids[order].astype(str)},
    )
    other = contract.make_model("bpr", seed=5).fit(contract.contract_dataset())
    apply_pretrained(other, tmp_path / "items.npz", rows={"item_emb.weight": "items"})
    assert torch.equal(other.module_.item_emb.weight, fitted.module_.item_emb.weight)
    np.save(tmp_path / "user_emb.weight.npy", np.ones((len(fitted.users_), 8), np.float32))
    assert apply_pretrained(other, tmp_path / "user_emb.weight.npy") == ["user_emb.weight"]
    assert float(other.module_.user_emb.weight.detach().sum()) == len(fitted.users_) * 8
    np.save(tmp_path / "user_emb.weight.npy", np.ones((3, 8), np.float32))
    with pytest.raises(ConfigError, match=r"has shape \(3, 8\)"):
        apply_pretrained(other, tmp_path / "user_emb.weight.npy")


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such pre-trained weights"):
        read_pretrained(tmp_path / "missing.npz")
    (tmp_path / "w.txt").write_text("1 2 3")
    with pytest.raises(DataError, match=r"must be a model folder, \.npz or \.npy"):
        read_pretrained(tmp_path / "w.txt")
    with pytest.raises(DataError, match="not a saved model folder"):
        read_pretrained(tmp_path)


def test_rows_without_common_ids_are_refused(fitted: BPRMF) -> None:
    from tuijian.data import Vocabulary

    stranger = Vocabulary([f"x{i}" for i in range(len(fitted.items_))], Columns.item_id)
    weights = PretrainedWeights(
        {"item_emb.weight": np.zeros((len(stranger), 8), np.float32)}, items=stranger
    )
    with pytest.raises(ConfigError, match="no item_id in common"):
        apply_pretrained(fitted, weights, rows={"item_emb.weight": "items"})
