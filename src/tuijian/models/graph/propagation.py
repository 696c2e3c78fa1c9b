"""The normalized user-item graph of LightGCN / NGCF, and exact propagation over it.

Nodes are the users (indices 0..U-1) followed by the items (U..U+I-1). The graph matrix
Â = D^-1/2 A D^-1/2 is symmetric, so the gradient of y = Â x is simply Â g: the autograd
functions below reuse the forward CSR product in backward instead of transposing a sparse
tensor (which torch does slowly, every batch).

`layer_mean_rows` gives the LightGCN final embeddings mean_k (Â^k E)[rows] of a batch's
nodes only, with the same value and gradient as propagating every layer over the whole graph:
the last layer (forward) and the first layer of the backward pass touch only the batch's rows.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

# `layer_mean_rows` multiplies by the batch's rows of Â alone while they hold less than this
# share of its entries, and uses the full product otherwise.
ROWS_SHARE = 0.5


def bipartite_adjacency(seen: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 of the (users + items) graph of `seen` (users x items), float32 CSR.

    An edge joins a user and an item the user interacted with; isolated nodes get empty rows.
    """
    binary = (sp.csr_matrix(seen) != 0).astype(np.float32)
    adj = sp.bmat([[None, binary], [binary.T, None]], format="csr", dtype=np.float32)
    adj.sum_duplicates()
    adj.sort_indices()
    degree = np.diff(adj.indptr).astype(np.float64)
    inv_sqrt = np.zeros_like(degree)
    np.power(degree, -0.5, out=inv_sqrt, where=degree > 0)
    rows = np.repeat(np.arange(adj.shape[0]), np.diff(adj.indptr))
    adj.data = (inv_sqrt[rows] * inv_sqrt[adj.indices]).astype(np.float32)
    return adj


def to_torch_csr(matrix: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A scipy CSR matrix as a float32 torch sparse CSR tensor (no copy on CPU)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        tensor = torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32, copy=False)),
            size=matrix.shape,
            check_invariants=False,
        )
    return tensor.to(device)


class NormalizedGraph:
    """Â of a users x items interaction matrix, held as scipy CSR (row slices) and torch CSR."""

    def __init__(self, seen: sp.csr_matrix, device: torch.device | str = "cpu") -> None:
        self.n_users, self.n_items = seen.shape
        self.matrix = bipartite_adjacency(seen)
        self.tensor = to_torch_csr(self.matrix, device)

    @property
    def n_nodes(self) -> int:
        """Users plus items."""
        return self.n_users + self.n_items

    def product(self, x: torch.Tensor) -> torch.Tensor:
        """Â x for a dense (N, D) tensor, without autograd."""
        return torch.sparse.mm(self.tensor, x)

    def layer_mean(self, x: torch.Tensor, n_layers: int) -> torch.Tensor:
        """mean over k = 0..n_layers of Â^k x, without autograd (Horner: n_layers products)."""
        acc = x
        for _ in range(n_layers):
            acc = x + self.product(acc)
        return acc / (n_layers + 1)


def _rows_product(sub: sp.csr_matrix, x: torch.Tensor) -> torch.Tensor:
    """sub @ x for a scipy CSR block and a dense tensor, on x's device."""
    out = sub @ x.detach().cpu().numpy()
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(x.device)


class _GraphProduct(torch.autograd.Function):
    """y = Â x; backward Â g (Â is symmetric)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, graph: NormalizedGraph) -> torch.Tensor:
        ctx.graph = graph
        return graph.product(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return ctx.graph.product(grad.contiguous()), None


class _LayerMeanRows(torch.autograd.Function):
    """rows of mean_k Â^k x: forward n_layers - 1 full products + one on the rows, same back."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, graph: NormalizedGraph, rows: np.ndarray, n_layers: int
    ) -> torch.Tensor:
        index = torch.from_numpy(rows).to(x.device)
        ctx.graph, ctx.n_layers, ctx.index, ctx.n_nodes = graph, n_layers, index, x.shape[0]
        if n_layers == 0:
            return x[index].clone()
        degree = np.diff(graph.matrix.indptr)
        # Slicing the rows copies their entries: past this share a full product is cheaper.
        ctx.sub = graph.matrix[rows] if degree[rows].sum() < ROWS_SHARE * degree.sum() else None
        acc = x
        for _ in range(n_layers - 1):
            acc = x + graph.product(acc)  # sum_{j < n_layers} Â^j x, every node
        if ctx.sub is None:
            out = x[index] + graph.product(acc)[index]
        else:
            out = x[index] + _rows_product(ctx.sub, acc)  # (R, D)
        return out / (n_layers + 1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        grad = grad.contiguous() / (ctx.n_layers + 1)  # (R, D)
        full = grad.new_zeros((ctx.n_nodes, grad.shape[1]))
        full[ctx.index] = grad
        if ctx.n_layers == 0:
            return full, None, None, None
        if ctx.sub is None:
            acc = full + ctx.graph.product(full)
        else:
            acc = full + _rows_product(ctx.sub.T, grad)  # G + Â G, G non-zero on rows only
        for _ in range(ctx.n_layers - 1):
            acc = full + ctx.graph.product(acc)
        return acc, None, None, None


def propagate(graph: NormalizedGraph, x: torch.Tensor) -> torch.Tensor:
    """Â x with autograd, (N, D) -> (N, D)."""
    return _GraphProduct.apply(x, graph)


def layer_mean(graph: NormalizedGraph, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """mean over k = 0..n_layers of Â^k x for every node, layer by layer, with autograd."""
    layers = [x]
    for _ in range(n_layers):
        layers.append(propagate(graph, layers[-1]))
    return torch.stack(layers).mean(dim=0)


def layer_mean_rows(
    graph: NormalizedGraph, x: torch.Tensor, rows: np.ndarray, n_layers: int
) -> torch.Tensor:
    """Rows `rows` (unique node indices) of `layer_mean(graph, x, n_layers)`, computed cheaply.

    Value and gradient equal those of the full propagation; only the order of work differs.
    """
    return _LayerMeanRows.apply(x, graph, np.asarray(rows, dtype=np.int64), n_layers)
