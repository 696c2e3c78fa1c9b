"""Copying named arrays and another module's parameters into a module (`tuijian.nn.init`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tuijian.errors import ConfigError
from tuijian.nn.init import copy_arrays, copy_parameters, load_embeddings


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


def test_copy_arrays_by_name_or_mapping() -> None:
    module = Towers()
    arrays = {"user_emb.weight": np.ones((5, 3), np.float32), "extra": np.zeros(2)}
    assert copy_arrays(module, arrays) == ["user_emb.weight"]
    assert float(module.user_emb.weight.detach().sum()) == 15.0
    assert copy_arrays(module, {"b": np.array([3.0, 4.0])}, {"b": "tower.bias"}) == ["tower.bias"]
    np.testing.assert_array_equal(module.tower.bias.detach().numpy(), [3.0, 4.0])
    with pytest.raises(ConfigError, match=r"weights\.npz has no 'c'"):
        copy_arrays(module, arrays, {"c": "tower.bias"}, source="weights.npz")
