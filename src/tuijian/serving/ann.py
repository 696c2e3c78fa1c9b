"""Approximate top-k over a large catalogue: a faiss inverted-file index of a dot-product
model's item vectors, searched with the query's vector (maximum inner product).

Exact scoring costs one pass over every item per request; from `ANN_MIN_ITEMS` items on the
service searches `nprobe` of `nlist` clusters instead (k-means cells of the item vectors), which
keeps recall@10 near 0.99 on the 1,000,000-item benchmark (docs/benchmarks/serving.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

ANN_MIN_ITEMS = 100_000
"""Catalogues from this size on are served from the vector index (when the model has one)."""
NPROBE = 32
"""Cells visited per search: the recall / latency knob (benchmarks/ann.py sweeps it)."""
TRAIN_POINTS = 64
"""Training vectors per cell for k-means (faiss warns below 39; more mostly slows the build)."""


def default_nlist(n_items: int) -> int:
    """About 4 sqrt(n) cells (4,000 at a million items), the usual IVF sizing."""
    return max(1, min(n_items // 39, int(4 * math.sqrt(n_items))))


@dataclass
class VectorIndex:
    """An IVF-Flat inner-product index over (n_items, D) float32 item vectors."""

    index: faiss.IndexIVFFlat
    n_items: int

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        nlist: int | None = None,
        nprobe: int = NPROBE,
        seed: int = 0,
    ) -> VectorIndex:
        """Cluster a sample of the vectors (k-means, inner product), then add them all."""
        items = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = items.shape
        cells = nlist or default_nlist(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT)
        sample = items
        if n > cells * TRAIN_POINTS:
            rows = np.random.default_rng(seed).choice(n, cells * TRAIN_POINTS, replace=False)
            sample = items[np.sort(rows)]
        index.cp.seed = seed
        index.train(sample)
        index.add(items)
        index.nprobe = min(nprobe, cells)
        return cls(index, n)

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores of each query vector, best first, never an item of
        that query's `exclude` array; -1 / NaN pad rows with fewer than k hits."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        n_q = len(queries)
        extra = max((len(e) for e in exclude), default=0)
        fetch = min(self.n_items, k + extra)
        scores, idx = self.index.search(queries, fetch)
        out_idx = np.full((n_q, k), -1, dtype=np.int64)
        out_scores = np.full((n_q, k), np.nan, dtype=np.float32)
        for q in range(n_q):  # one row per request: the service searches one query at a time
            keep = idx[q] >= 0
            if q < len(exclude) and len(exclude[q]):
                keep &= ~np.isin(idx[q], exclude[q])
            hits = np.flatnonzero(keep)[:k]
            out_idx[q, : len(hits)] = idx[q, hits]
            out_scores[q, : len(hits)] = scores[q, hits]
        return out_idx, out_scores
