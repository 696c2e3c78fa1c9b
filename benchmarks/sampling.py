"""Negative-sampler throughput at ml-1m size (6,040 users x 3,706 items, 1M positives).

One draw = `NegativeSampler.sample` of `n` negatives for every positive (user, item) pair, as
one BPR epoch asks; uniform and popularity^0.75; 1 thread, and 2 threads each sampling half
of the pairs with its own generator (numpy releases the GIL inside the array operations).
The real ml-1m ratings are used when present, else a synthetic matrix of the same shape.

    .venv/bin/python -m benchmarks.sampling --out /tmp/sampling.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from benchmarks.common import DATASETS, set_threads
from tuijian.data import build_dataset, load, prepare
from tuijian.nn.sampling import NegativeSampler

N_USERS, N_ITEMS, N_POSITIVES = 6_040, 3_706, 1_000_209


def ml1m_positives() -> tuple[sp.csr_matrix, str]:
    """The ml-1m users x items positives, or a synthetic Zipf-popular matrix of that shape."""
    fmt, path = DATASETS["ml-1m"]
    if path.exists():
        frame, _ = prepare(load(fmt, path).interactions)
        return build_dataset(frame).matrix, "ml-1m ratings"
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    keys = np.unique(
        rng.integers(0, N_USERS, 2 * N_POSITIVES) * N_ITEMS
        + rng.choice(N_ITEMS, 2 * N_POSITIVES, p=popularity / popularity.sum())
    )
    keys = rng.choice(keys, size=min(N_POSITIVES, len(keys)), replace=False)
    data = np.ones(len(keys), dtype=np.float32)
    shape = (N_USERS, N_ITEMS)
    return sp.csr_matrix((data, (keys // N_ITEMS, keys % N_ITEMS)), shape=shape), "synthetic"


def timed(fn: Any, repeats: int) -> list[float]:
    """Wall seconds of `repeats` calls (after one warm-up call)."""
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def measure(
    sampler: NegativeSampler, users: np.ndarray, n: int, threads: int, repeats: int
) -> dict[str, float]:
    """Negatives per second drawing `n` per entry of `users`, on `threads` threads."""
    chunks = np.array_split(users, threads)
    rngs = np.random.default_rng(0).spawn(threads)
    if threads == 1:
        seconds = timed(lambda: sampler.sample(users, n, rngs[0]), repeats)
    else:
        with ThreadPoolExecutor(threads) as pool:

            def run() -> None:
                list(pool.map(lambda c, r: sampler.sample(c, n, r), chunks, rngs))

            seconds = timed(run, repeats)
    total = len(users) * n
    return {
        "negatives": total,
        "median_s": statistics.median(seconds),
        "best_s": min(seconds),
        "median_per_s": total / statistics.median(seconds),
        "best_per_s": total / min(seconds),
    }


def main() -> None:
    """Measure every (alpha, n, threads) cell and write them as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    set_threads(1)
    positives, source = ml1m_positives()
    users = np.repeat(np.arange(positives.shape[0]), np.diff(positives.indptr))
    rows = []
    for alpha in (0.0, 0.75):
        t0 = time.perf_counter()
        sampler = NegativeSampler(positives, alpha)
        build_s = time.perf_counter() - t0
        for n in (1, 4):
            for threads in (1, 2):
                cell = measure(sampler, users, n, threads, args.repeats)
                rows.append(
                    {"alpha": alpha, "n": n, "threads": threads, "build_s": build_s, **cell}
                )
                print(
                    f"alpha={alpha:<5} n={n} threads={threads}: "
                    f"{cell['median_per_s'] / 1e6:6.1f} M/s median, "
                    f"{cell['best_per_s'] / 1e6:6.1f} M/s best",
                    flush=True,
                )
    result = {
        "data": source,
        "shape": list(positives.shape),
        "positives": int(positives.nnz),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
