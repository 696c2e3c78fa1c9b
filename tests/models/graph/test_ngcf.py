"""NGCF: one layer by the paper's formula, node dropout, quality, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models import contract
from tests.models.graph.conftest import dense_adjacency
from tuijian.data import Dataset, Split
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.graph import NGCF
from tuijian.models.registry import get_model


@pytest.fixture(scope="module")
def data() -> Dataset:
    return contract.contract_dataset()


def leaky(x: np.ndarray, slope: float) -> np.ndarray:
    return np.where(x > 0, x, slope * x)


def one_layer(model: NGCF, source: np.ndarray) -> np.ndarray:
    """E' = LeakyReLU(((L + I) E) W1 + b1 + ((L S) ⊙ E) W2 + b2), S the (dropped-out) sources."""
    module = model.module_
    ego = module.ego.detach().numpy().astype(np.float64)
    lap = dense_adjacency(model.seen_.toarray())
    w1, b1 = (t.detach().numpy() for t in (module.sum_layers[0].weight, module.sum_layers[0].bias))
    w2, b2 = (
        t.detach().numpy()
        for t in (module.affinity_layers[0].weight, module.affinity_layers[0].bias)
    )
    side = lap @ source
    return leaky((side + ego) @ w1.T + b1 + (side * ego) @ w2.T + b2, model.config.negative_slope)


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def test_one_layer_follows_the_paper(data: Dataset) -> None:
    model = NGCF(embedding_size=4, layer_sizes=(3,), epochs=2, batch_size=16).fit(data)
    ego = model.module_.ego.detach().numpy().astype(np.float64)
    with torch.no_grad():
        final = model.module_(dropout=False).numpy()
    assert final.shape == (data.n_users + data.n_items, 4 + 3)
    np.testing.assert_allclose(final[:, :4], ego, rtol=1e-6)
    np.testing.assert_allclose(final[:, 4:], normalize(one_layer(model, ego)), rtol=1e-4, atol=1e-6)
    scores = model.score(np.arange(data.n_users)).numpy()
    expected = final[: data.n_users] @ final[data.n_users :].T
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-6)


def test_node_dropout_blocks_outgoing_messages(data: Dataset) -> None:
    model = NGCF(
        embedding_size=4, layer_sizes=(3,), epochs=1, node_dropout=0.5, message_dropout=0.0
    ).fit(data)
    ego = model.module_.ego.detach().numpy().astype(np.float64)
    torch.manual_seed(3)
    with torch.no_grad():
        final = model.module_(dropout=True).numpy()
    torch.manual_seed(3)
    keep = (torch.rand(len(ego), 1) >= 0.5).numpy()
    assert 0 < keep.sum() < len(ego)
    expected = normalize(one_layer(model, ego * keep / 0.5))
    np.testing.assert_allclose(final[:, 4:], expected, rtol=1e-4, atol=1e-6)


def test_message_dropout_only_in_training(data: Dataset) -> None:
    model = NGCF(embedding_size=4, layer_sizes=(4, 4), epochs=1, message_dropout=0.5).fit(data)
    with torch.no_grad():
        a, b = model.module_(dropout=False), model.module_(dropout=False)
        c = model.module_(dropout=True)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_loss_is_bpr_plus_l2_of_final_embeddings(data: Dataset) -> None:
    model = NGCF(embedding_size=4, layer_sizes=(4,), epochs=1, message_dropout=0.0, reg_weight=0.5)
    model.fit(data)
    batch = next(iter(model.batches(data, np.random.default_rng(0))))
    users, pos, neg = (t.numpy() for t in batch[:3])
    with torch.no_grad():
        loss = model.compute_loss(batch).item()
        final = model.module_(dropout=False).numpy().astype(np.float64)
    u, p, n = final[users], final[data.n_users + pos], final[data.n_users + neg]
    diff = (u * p).sum(1) - (u * n).sum(1)
    bpr = np.mean(np.log1p(np.exp(-diff)))
    reg = 0.5 * ((u**2).sum() + (p**2).sum() + (n**2).sum()) / 2 / len(users)
    assert loss == pytest.approx(bpr + reg, rel=1e-5)


def test_save_load_round_trip(data: Dataset, tmp_path: Path) -> None:
    model = contract.fit_tiny("ngcf", data)
    contract.check_save_load(model, data, tmp_path / "ngcf")
    assert NGCF.load(tmp_path / "ngcf").config.layer_sizes == (8, 8)


def test_beats_popularity_on_the_synthetic_shop(shop_split: Split) -> None:
    def ndcg(model: object) -> float:
        res = evaluate(model, shop_split, ks=(10,), metrics=("ndcg",), beyond_accuracy=False)
        return res["ndcg@10"]

    pop = ndcg(get_model("pop").fit(shop_split.train))
    model = NGCF(embedding_size=16, layer_sizes=(16, 16), epochs=15, batch_size=256, lr=0.01)
    assert ndcg(model.fit(shop_split.train)) > pop + 0.08  # measured 0.298 vs 0.173


def test_score_history_folds_in_a_training_history() -> None:
    data = contract.contract_dataset()
    model = contract.fit_tiny("ngcf", data, epochs=50, lr=0.02)
    assert contract.check_score_history(model, data, min_overlap=0.6) > 0.6  # measured 0.69


def test_held_out_users_beat_popularity_on_the_synthetic_shop() -> None:
    ndcg, pop, overlap = contract.held_out_users_ndcg(
        "ngcf",
        source="shop",
        embedding_size=16,
        layer_sizes=(16, 16),
        epochs=15,
        batch_size=256,
        lr=0.01,
    )
    assert ndcg > pop + 0.05  # measured 0.285 vs 0.207
    assert overlap > 0.7  # measured 0.77
