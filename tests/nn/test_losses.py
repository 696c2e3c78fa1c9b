"""Each loss against its formula computed by hand with numpy on a small example."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tuijian.nn.losses import (
    bce_loss,
    bpr_loss,
    chunked_cross_entropy,
    in_batch_duplicates,
    kl_normal,
    l2_penalty,
    mse_loss,
    sampled_softmax_loss,
    softmax_ce_loss,
)


def t(x: object) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_mse_without_and_with_mask() -> None:
    pred = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
    target = np.array([[1.5, 2.0, 1.0], [0.0, 4.0, -1.0]])
    mask = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    # all six: (0.25 + 0 + 4 + 0.25 + 16 + 0) / 6; masked: (0.25 + 4 + 0.25) / 3 = 1.5
    np.testing.assert_allclose(float(mse_loss(t(pred), t(target))), 20.5 / 6)
    np.testing.assert_allclose(float(mse_loss(t(pred), t(target), t(mask))), 1.5)
    assert float(mse_loss(t(pred), t(target), t(np.zeros_like(mask)))) == 0.0


def test_bce_on_logits() -> None:
    logits = np.array([2.0, -1.0, 0.0, 3.0])
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    p = sigmoid(logits)
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    np.testing.assert_allclose(float(bce_loss(t(logits), t(labels))), expected, rtol=1e-12)


def test_bpr_with_one_and_several_negatives() -> None:
    pos = np.array([[2.0], [0.5]])
    neg = np.array([[1.0, 3.0], [0.5, -1.0]])
    # pairs: 2-1, 2-3, 0.5-0.5, 0.5+1
    diffs = np.array([1.0, -1.0, 0.0, 1.5])
    expected = -np.mean(np.log(sigmoid(diffs)))
    np.testing.assert_allclose(float(bpr_loss(t(pos), t(neg))), expected, rtol=1e-12)
    one = -np.mean(np.log(sigmoid(np.array([1.0, 0.0]))))
    np.testing.assert_allclose(float(bpr_loss(t([2.0, 0.5]), t([1.0, 0.5]))), one, rtol=1e-12)


def test_softmax_ce_with_count_targets() -> None:
    logits = np.array([[1.0, 2.0, 0.0, -1.0], [0.0, 0.0, 3.0, 1.0]])
    counts = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    expected = -(log_softmax(logits) * counts).sum(axis=1).mean()
    np.testing.assert_allclose(float(softmax_ce_loss(t(logits), t(counts))), expected, rtol=1e-12)


def test_softmax_ce_with_class_targets() -> None:
    logits = np.array([[1.0, 2.0, 0.0], [0.0, -2.0, 3.0], [0.5, 0.5, 0.5]])
    classes = np.array([1, 0, 2])
    expected = -log_softmax(logits)[np.arange(3), classes].mean()
    got = softmax_ce_loss(t(logits), torch.tensor(classes))
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)


def test_sampled_softmax_subtracts_log_q() -> None:
    rng = np.random.default_rng(0)
    query, items = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    q = np.array([0.5, 0.3, 0.2])
    temperature = 0.5
    logits = query @ items.T / temperature - np.log(q)[None, :]
    expected = -np.mean(np.diag(log_softmax(logits)))
    got = sampled_softmax_loss(t(query), t(items), t(np.log(q)), temperature=temperature)
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)
    plain = -np.mean(np.diag(log_softmax(query @ items.T)))
    np.testing.assert_allclose(float(sampled_softmax_loss(t(query), t(items))), plain, rtol=1e-12)


def test_sampled_softmax_masks_duplicates() -> None:
    rng = np.random.default_rng(1)
    query, items = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    item_idx = torch.tensor([7, 9, 7, 2])  # rows 0 and 2 share their positive item
    dup = in_batch_duplicates(item_idx)
    expected_mask = np.zeros((4, 4), dtype=bool)
    expected_mask[0, 2] = expected_mask[2, 0] = True
    np.testing.assert_array_equal(dup.numpy(), expected_mask)
    logits = query @ items.T
    logits[expected_mask] = -np.inf  # the duplicate drops out of the row's softmax
    expected = -np.mean(np.diag(log_softmax(logits)))
    got = sampled_softmax_loss(t(query), t(items), duplicates=dup)
    np.testing.assert_allclose(float(got), expected, rtol=1e-12)


def test_kl_normal() -> None:
    mu = np.array([[0.0, 1.0], [-0.5, 2.0]])
    logvar = np.array([[0.0, 0.5], [-1.0, 0.2]])
    # KL(N(mu, s^2) || N(0, 1)) = 0.5 * sum(s^2 + mu^2 - 1 - log s^2)
    per_row = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar).sum(axis=1)
    np.testing.assert_allclose(float(kl_normal(t(mu), t(logvar))), per_row.mean(), rtol=1e-12)
    assert float(kl_normal(t(np.zeros((2, 3))), t(np.zeros((2, 3))))) == 0.0


def test_l2_penalty() -> None:
    a = np.array([[1.0, 2.0], [3.0, 0.0]])
    b = np.array([-1.0, 0.5])
    np.testing.assert_allclose(float(l2_penalty(t(a), t(b))), (14.0 + 1.25) / 2)


def test_losses_have_gradients() -> None:
    pos = torch.tensor([1.0, 2.0], requires_grad=True)
    bpr_loss(pos, torch.zeros(2)).backward()
    expected = -(1 - sigmoid(np.array([1.0, 2.0]))) / 2  # d/dx of -mean log sigmoid(x)
    np.testing.assert_allclose(pos.grad.numpy(), expected, rtol=1e-6)


def test_chunked_cross_entropy_matches_the_whole_loss_and_its_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(37, 8, generator=gen, requires_grad=True)
    weight = torch.randn(50, 8, generator=gen, requires_grad=True)
    targets = torch.randint(0, 50, (37,), generator=gen)
    whole = F.cross_entropy(h @ weight.T, targets)
    grads = torch.autograd.grad(whole, (h, weight))
    chunked = chunked_cross_entropy(h, weight, targets, budget=50 * 5)  # 8 chunks of <= 5 rows
    assert chunked.item() == pytest.approx(whole.item(), rel=1e-6)
    for got, want in zip(torch.autograd.grad(chunked, (h, weight)), grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
