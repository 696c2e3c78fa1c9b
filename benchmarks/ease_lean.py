"""EASE at the LAPACK bound: our fit against a plain float32 EASE, time and peak memory.

The plain form is what a careful user writes with SciPy: the Gram matrix X^T X as a dense
float32 array from a sparse product, `spotrf` + `spotri` overwriting it, the upper triangle
mirrored with `np.triu`, then B = -P / diag(P). Ours is `tuijian.models.classic.ease`
(`ease_weights`, what `EASE.fit` runs after its memory check). Each fit runs in a fresh
subprocess on one thread, ours and plain alternating, so the peak RSS of each is its own and
the machine's load affects both alike; the fit's memory is the kernel's peak RSS during the fit
(VmHWM, reset just before it) minus the RSS before it: what the fit adds to the process. The
matrices are real: ml-1m (3,706 items) and the 9,724 and 18,357 most frequent items of Yelp
(S3Rec), every interaction a 1.

    .venv/bin/python benchmarks/ease_lean.py --out /tmp/tj/ease_lean.json
    .venv/bin/python benchmarks/ease_lean.py --accuracy   # NDCG@10, float32 vs float64
    .venv/bin/python benchmarks/ease_lean.py --neighbors 50 100 200 500   # the sparse variant
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA, SEED, WORK, random_split_of, set_threads
from tuijian.data import load

L2 = 500.0
SIZES = (3706, 9724, 18357)


def matrix_of(n_items: int) -> sp.csr_matrix:
    """The users x items 0/1 matrix of the benchmark at `n_items` (cached as .npz)."""
    path = WORK / "ease_lean" / f"{n_items}.npz"
    if path.is_file():
        return sp.load_npz(path).tocsr()
    if n_items == 3706:
        frame = load("movielens", DATA / "ml-1m").interactions
    else:
        frame = load("sequence", DATA / "s3rec-amazon-yelp-lastfm" / "Yelp.txt").interactions
    users, u = np.unique(frame["user_id"].to_numpy(), return_inverse=True)
    items, i = np.unique(frame["item_id"].to_numpy(), return_inverse=True)
    counts = np.bincount(i, minlength=len(items))
    if n_items > len(items):
        raise SystemExit(f"the data has {len(items)} items, fewer than {n_items}")
    keep = np.argsort(-counts, kind="stable")[:n_items]  # the most frequent items
    new = np.full(len(items), -1)
    new[keep] = np.arange(n_items)
    rows = new[i] >= 0
    x = sp.csr_matrix(
        (np.ones(rows.sum(), np.float32), (u[rows], new[i][rows])), shape=(len(users), n_items)
    )
    x.sum_duplicates()
    x.data[:] = 1.0
    x = x[np.diff(x.indptr) > 0]  # users left with no item
    path.parent.mkdir(parents=True, exist_ok=True)
    sp.save_npz(path, x)
    return x


def rss_bytes() -> int:
    """This process's resident memory now."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def reset_peak_rss() -> None:
    """Start the kernel's peak-RSS count (VmHWM) again from the current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_bytes() -> int:
    """The peak RSS since the last `reset_peak_rss` (VmHWM of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmHWM in /proc/self/status")


def plain_ease(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE as written directly against LAPACK, in float32."""
    from scipy.linalg import lapack

    xf = x.astype(np.float32)
    gram = (xf.T @ xf).toarray()
    gram[np.diag_indices_from(gram)] += l2
    factor, info = lapack.spotrf(gram, lower=0, clean=0, overwrite_a=1)
    assert info == 0
    inverse, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    assert info == 0
    inverse = np.triu(inverse) + np.triu(inverse, 1).T
    weights = inverse / -np.diagonal(inverse)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def child(kind: str, n_items: int) -> None:
    """One fit in this fresh process; prints seconds, RSS before and peak RSS as JSON."""
    set_threads(1)
    from threadpoolctl import threadpool_limits

    from tuijian.models.classic.ease import ease_weights

    x = matrix_of(n_items)
    with threadpool_limits(1):
        before = rss_bytes()
        reset_peak_rss()
        start = time.perf_counter()
        weights = ease_weights(x, L2, "float32") if kind == "ours" else plain_ease(x, L2)
        seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    check = float(np.abs(weights[:50, :50]).sum())
    print(json.dumps({"seconds": seconds, "rss_before": before, "peak_rss": peak, "check": check}))


def run_child(kind: str, n_items: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(n_items)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args: argparse.Namespace) -> None:
    rows = []
    for n in args.sizes:
        matrix_of(n)  # build the cache outside the timed processes
        bound = n * n * 4
        runs: dict[str, list[dict]] = {"ours": [], "plain": []}
        for _ in range(args.repeats):
            for kind in ("ours", "plain"):
                runs[kind].append(run_child(kind, n))
        assert abs(runs["ours"][0]["check"] - runs["plain"][0]["check"]) < 1e-3 * max(
            1.0, runs["plain"][0]["check"]
        ), "ours and plain disagree"
        row = {"items": n, "bound_bytes": bound}
        for kind, results in runs.items():
            best = min(results, key=lambda r: r["seconds"])
            row[kind] = {
                "seconds": [round(r["seconds"], 2) for r in results],
                "peak_rss": max(r["peak_rss"] for r in results),
                "fit_rss": max(r["peak_rss"] - r["rss_before"] for r in results),
                "best_seconds": round(best["seconds"], 2),
            }
        pairs = [
            o["seconds"] / p["seconds"] for o, p in zip(runs["ours"], runs["plain"], strict=True)
        ]
        row["time_ratios"] = [round(r, 3) for r in pairs]
        row["fit_rss_over_bound"] = round(row["ours"]["fit_rss"] / bound, 3)
        row["plain_fit_rss_over_bound"] = round(row["plain"]["fit_rss"] / bound, 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| items | ours s | plain s | ours/plain (pairs) | ours fit RSS / n²·4 | plain / n²·4 |")
    print("|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(
            f"| {r['items']:,} | {r['ours']['best_seconds']:.1f} | {r['plain']['best_seconds']:.1f}"
            f" | {', '.join(f'{x:.2f}' for x in r['time_ratios'])}"
            f" | {r['fit_rss_over_bound']:.2f} | {r['plain_fit_rss_over_bound']:.2f} |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "argv": sys.argv[1:]}, indent=2))


def accuracy() -> None:
    """Test NDCG@10 of EASE in float32 and float64 on ml-100k and ml-1m (random 8:1:1)."""
    from tuijian.evaluation import evaluate
    from tuijian.models.registry import get_model

    set_threads(1)
    for name in ("ml-100k", "ml-1m"):
        split = random_split_of(name, seed=SEED)
        for l2 in (None, L2):  # the default, and the l2 of the earlier float64-only releases
            scores = {}
            for dtype in ("float32", "float64"):
                model = get_model("ease", dtype=dtype, l2=l2).fit(split.train)
                scores[dtype] = evaluate(model, split, part="test", ks=(10,)).summary["ndcg@10"]
            print(
                f"{name} l2={model.l2_:g}: ndcg@10 float32 {scores['float32']:.6f}, float64 "
                f"{scores['float64']:.6f}, 4 decimals equal: "
                f"{round(scores['float32'], 4) == round(scores['float64'], 4)}"
            )


def neighbors(sizes: list[int]) -> None:
    """Test NDCG@10 and fit time of `ease_neighbors` at each N against dense EASE (default l2)."""
    from tuijian.evaluation import evaluate
    from tuijian.models.registry import get_model

    set_threads(1)
    for name in ("ml-100k", "ml-1m"):
        split = random_split_of(name, seed=SEED)
        runs = [("ease", {})] + [("ease_neighbors", {"n_neighbors": n}) for n in sizes]
        for model_name, params in runs:
            start = time.perf_counter()
            model = get_model(model_name, **params).fit(split.train)
            seconds = time.perf_counter() - start
            ndcg = evaluate(model, split, part="test", ks=(10,)).summary["ndcg@10"]
            weights = model.item_weights_
            nnz = weights.nnz if sp.issparse(weights) else weights.size
            print(
                f"{name} {model_name} {params}: ndcg@10 {ndcg:.4f}, fit {seconds:.1f} s, "
                f"{nnz:,} weights"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ITEMS"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument(
        "--neighbors", nargs="+", type=int, help="run the sparse variant at these N"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
    elif args.accuracy:
        accuracy()
    elif args.neighbors:
        neighbors(args.neighbors)
    else:
        speed(args)


if __name__ == "__main__":
    main()
