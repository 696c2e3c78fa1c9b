"""The normalized bipartite graph and propagation: hand values, dense formula, exact gradients."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tests.models.graph.conftest import dense_adjacency
from tuijian.models.graph.propagation import (
    NormalizedGraph,
    bipartite_adjacency,
    layer_mean,
    layer_mean_rows,
    propagate,
)

# users x items: u0 saw i0, i1; u1 saw i1, i2; u2 saw i1; item i3 nobody saw.
SEEN = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0]], dtype=np.float32))


def random_graph(seed: int, n_users: int = 9, n_items: int = 7) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.35).astype(np.float32))


def test_adjacency_hand_values() -> None:
    adj = bipartite_adjacency(SEEN).toarray()
    assert adj.shape == (7, 7)
    assert adj.dtype == np.float32
    # degrees: u0 2, u1 2, u2 1, i0 1, i1 3, i2 1, i3 0
    assert adj[0, 3] == pytest.approx(1 / np.sqrt(2 * 1))
    assert adj[0, 4] == pytest.approx(1 / np.sqrt(2 * 3))
    assert adj[2, 4] == pytest.approx(1 / np.sqrt(1 * 3))
    assert adj[4, 2] == pytest.approx(1 / np.sqrt(3))
    assert adj[0, 5] == 0 and adj[0, 1] == 0 and adj[3, 4] == 0
    assert not adj[6].any() and not adj[:, 6].any()  # the isolated item
    np.testing.assert_allclose(adj, adj.T)
    np.testing.assert_allclose(adj, dense_adjacency(SEEN.toarray()), rtol=1e-6)


def test_weights_do_not_change_the_graph() -> None:
    weighted = SEEN.multiply(np.array([[5.0, 2.0, 1.0, 1.0]])).tocsr()
    np.testing.assert_allclose(
        bipartite_adjacency(weighted).toarray(), bipartite_adjacency(SEEN).toarray()
    )


@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_layer_mean_equals_dense_formula(n_layers: int) -> None:
    seen = random_graph(0)
    graph = NormalizedGraph(seen)
    x = np.random.default_rng(1).normal(size=(graph.n_nodes, 4))
    adj = dense_adjacency(seen.toarray())
    expected = sum(np.linalg.matrix_power(adj, k) @ x for k in range(n_layers + 1)) / (n_layers + 1)
    got = graph.layer_mean(torch.tensor(x, dtype=torch.float32), n_layers)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    auto = layer_mean(graph, torch.tensor(x, dtype=torch.float32), n_layers)
    np.testing.assert_allclose(auto.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_propagate_gradient_is_the_transposed_product() -> None:
    seen = random_graph(2)
    graph = NormalizedGraph(seen)
    adj = torch.tensor(dense_adjacency(seen.toarray()), dtype=torch.float32)
    x = torch.randn(graph.n_nodes, 3, requires_grad=True)
    weights = torch.randn(graph.n_nodes, 3)
    (propagate(graph, x) * weights).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (adj.T @ weights).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("few_rows", [True, False])
@pytest.mark.parametrize("n_layers", [0, 1, 2, 3])
def test_rows_match_full_propagation_in_value_and_gradient(n_layers: int, few_rows: bool) -> None:
    seen = random_graph(3, n_users=12, n_items=10)
    graph = NormalizedGraph(seen)
    adj = torch.tensor(dense_adjacency(seen.toarray()), dtype=torch.float32)
    rows = np.array([0, 3, 4, 12, 15, 21]) if few_rows else np.arange(graph.n_nodes)[::-1].copy()
    weights = torch.randn(len(rows), 5)
    x0 = torch.randn(graph.n_nodes, 5)

    x_ref = x0.clone().requires_grad_()
    layers, h = [x_ref], x_ref
    for _ in range(n_layers):
        h = adj @ h
        layers.append(h)
    ref = torch.stack(layers).mean(0)[torch.from_numpy(rows)]
    (ref * weights).sum().backward()

    x = x0.clone().requires_grad_()
    got = layer_mean_rows(graph, x, rows, n_layers)
    (got * weights).sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), x_ref.grad.numpy(), rtol=1e-5, atol=1e-6)
