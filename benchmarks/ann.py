"""Vector search for large catalogues (docs/benchmarks/serving.md): recall of the service's
faiss IVF top-10 against the exact top-10, and per-request latency, over a synthetic catalogue.

Item vectors are drawn like learned embeddings: a mixture of `clusters` Gaussian topics with
per-item norms from a log-normal (popular items have long vectors); query vectors mix a user's
few topics. Exact top-10 is a blocked matrix product; latency is one query per search on one
thread (median and p99 of `requests` searches).

    nice -n 10 .venv/bin/python benchmarks/ann.py --items 1000000 --dim 64
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np

from tuijian.serving.ann import VectorIndex, default_nlist


def catalogue(
    n_items: int, dim: int, n_queries: int, clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(items (n_items, dim), queries (n_queries, dim)) float32, clustered like embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    topic = rng.integers(0, clusters, n_items)
    items = centres[topic] + 0.8 * rng.standard_normal((n_items, dim)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    items *= rng.lognormal(0.0, 0.3, (n_items, 1)).astype(np.float32)
    mix = rng.dirichlet(np.full(3, 1.0), n_queries).astype(np.float32)  # 3 topics per user
    picks = rng.integers(0, clusters, (n_queries, 3))
    queries = np.einsum("qt,qtd->qd", mix, centres[picks])
    queries += 0.3 * rng.standard_normal((n_queries, dim)).astype(np.float32)
    return np.ascontiguousarray(items), np.ascontiguousarray(queries, dtype=np.float32)


def exact_top(items: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) exact inner-product top-k indices, blocked over items."""
    flat = faiss.IndexFlatIP(items.shape[1])
    flat.add(items)
    return flat.search(queries, k)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--threads", type=int, default=2, help="faiss threads for the build")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    faiss.omp_set_num_threads(args.threads)
    items, queries = catalogue(args.items, args.dim, args.queries, args.clusters, args.seed)
    start = time.perf_counter()
    truth = exact_top(items, queries, args.k)
    exact_s = time.perf_counter() - start
    start = time.perf_counter()
    index = VectorIndex.build(items, nprobe=max(args.nprobe))
    build_s = time.perf_counter() - start
    print(
        f"{args.items:,} items x {args.dim} dims, nlist {default_nlist(args.items):,}: "
        f"index built in {build_s:.1f} s on {args.threads} threads; exact top-{args.k} of "
        f"{args.queries} queries {exact_s:.1f} s"
    )
    faiss.omp_set_num_threads(1)
    rows = []
    for nprobe in args.nprobe:
        index.index.nprobe = nprobe
        found, _ = index.search(queries, args.k)
        recall = np.mean(
            [len(np.intersect1d(f, t)) / args.k for f, t in zip(found, truth, strict=True)]
        )
        times = []
        for q in range(args.queries):
            tick = time.perf_counter()
            index.search(queries[q : q + 1], args.k)
            times.append(time.perf_counter() - tick)
        ms = np.array(times) * 1e3
        row = {
            "nprobe": nprobe,
            f"recall@{args.k}": round(float(recall), 4),
            "p50_ms": round(float(np.median(ms)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
        }
        rows.append(row)
        print(json.dumps(row))
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(items)
    times = []
    for q in range(min(100, args.queries)):
        tick = time.perf_counter()
        flat.search(queries[q : q + 1], args.k)
        times.append(time.perf_counter() - tick)
    print(json.dumps({"exact_one_thread_p50_ms": round(float(np.median(times)) * 1e3, 2)}))


if __name__ == "__main__":
    main()
