"""Initialization from pre-trained weights: arrays, files, model folders and fitted models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from tests.models import contract
from tuijian.data import Columns, build_dataset
from tuijian.errors import ConfigError, DataError
from tuijian.models.classic.bpr_mf import BPRMF
from tuijian.nn.init import (
    PretrainedWeights,
    apply_pretrained,
    copy_parameters,
    init_from_model,
    load_embeddings,
    read_pretrained,
)


class Towers(nn.Module):
    def __init__(self, n: int = 5, size: int = 3) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n, size)
        self.tower = nn.Linear(size, 2)


def test_load_embeddings_by_module_or_parameter_name() -> None:
    module = Towers()
    array = np.arange(15, dtype=np.float64).reshape(5, 3)
    load_embeddings(module, "user_emb", array)
    np.testing.assert_array_equal(module.user_emb.weight.detach().numpy(), array)
    assert module.user_emb.weight.dtype == torch.float32
    load_embeddings(module, "tower.bias", torch.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(module.tower.bias.detach().numpy(), [1.0, 2.0])


def test_load_embeddings_checks_shape_and_name() -> None:
    module = Towers()
    with pytest.raises(ConfigError, match=r"'user_emb' has shape \(4, 3\), the parameter \(5, 3\)"):
        load_embeddings(module, "user_emb", np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="has no parameter 'item_emb'"):
        load_embeddings(module, "item_emb", np.zeros((5, 3)))


def test_copy_parameters_with_mapping_and_by_name() -> None:
    src, dst = Towers(), Towers()
    copied = copy_parameters(src, dst, {"user_emb.weight": "user_emb.weight"})
    assert copied == ["user_emb.weight"]
    assert torch.equal(src.user_emb.weight, dst.user_emb.weight)
    assert not torch.equal(src.tower.weight, dst.tower.weight)
    copy_parameters(src, dst)
    for a, b in zip(src.parameters(), dst.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="has no 'nope'"):
        copy_parameters(src, dst, {"nope": "user_emb.weight"})
    with pytest.raises(ConfigError, match="no array name matches"):
        copy_parameters(src, nn.Linear(2, 2), None)


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
