"""The shared MLP tower (tuijian.nn.mlp) used by NCF: layers by hand, dropout statistics."""

from __future__ import annotations

import pytest
import torch

from tuijian.nn.mlp import MLP, Dropout


def test_mlp_is_dropout_linear_activation_stack() -> None:
    torch.manual_seed(0)
    mlp = MLP([3, 4, 2], dropout=0.5, activation="tanh", last_activation=False).eval()
    x = torch.randn(5, 3)
    first, second = mlp.linears
    expected = second(torch.tanh(first(x)))  # no activation after the last layer
    torch.testing.assert_close(mlp(x), expected)
    assert mlp.output_size == 2
    h = first(x)
    torch.testing.assert_close(mlp.activate_(0, h.clone()), torch.tanh(h))
    torch.testing.assert_close(mlp.activate_(1, h.clone()), h)


def test_bad_sizes_and_activation_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="at least one layer"):
        MLP([3])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP([3, 2], activation="swish")
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        Dropout(1.0)


def test_dropout_drops_p_and_rescales_the_rest() -> None:
    torch.manual_seed(0)
    drop = Dropout(0.3)
    x = torch.ones(200_000)
    y = drop(x)
    assert (y == 0).float().mean().item() == pytest.approx(0.3, abs=0.005)
    kept = y[y != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)  # unbiased
    drop.eval()
    assert drop(x) is x


def test_dropout_masks_are_seeded_and_pass_gradients() -> None:
    drop = Dropout(0.5)
    torch.manual_seed(3)
    a = drop(torch.ones(4, 6))
    torch.manual_seed(3)
    b = drop(torch.ones(4, 6))
    torch.testing.assert_close(a, b)
    x = torch.ones(4, 6, requires_grad=True)
    torch.manual_seed(3)
    drop(x).sum().backward()
    torch.testing.assert_close(x.grad, a)  # d(x * mask)/dx = mask
