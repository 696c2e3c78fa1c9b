"""How fast is full-ranking evaluation of a factor model at MovieLens-1M size?

A 64-dimensional factor model (random factors, or ALS) over 6,040 users x 3,706 items: time
`evaluate(model, split, ks=(10, 20))` (every metric) and the bare ranking (`model.topk` of every
user with the training items excluded), median of `--repeats` runs, at each thread count; then
cProfile one evaluation to show where the time goes.

    .venv/bin/python benchmarks/eval_speed.py --out /tmp/eval_speed.json
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATASETS, Timer, random_split_of, set_threads
from tuijian.data import Dataset, Split
from tuijian.evaluation import evaluate
from tuijian.models.base import ModelConfig, Recommender
from tuijian.models.ranking import rows_per_batch
from tuijian.models.registry import get_model

KS = (10, 20)


class RandomFactorsConfig(ModelConfig):
    """Size of the random factors."""

    factors: int = Field(64, gt=0)


class RandomFactors(Recommender[RandomFactorsConfig]):
    """Gaussian user and item factors: ranks exactly like any trained factor model of that size."""

    state_fields = ("user_factors_", "item_factors_")

    def _fit(self, train: Dataset, *, valid: Dataset | None, trainer: Any) -> None:
        rng = np.random.default_rng(self.config.seed)
        size = self.config.factors
        self.user_factors_ = rng.standard_normal((train.n_users, size), dtype=np.float32)  # (U, F)
        self.item_factors_ = rng.standard_normal((train.n_items, size), dtype=np.float32)  # (I, F)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """U[u] @ V.T, shape (len(user_idx), n_items or len(item_idx))."""
        items = self.item_factors_ if item_idx is None else self.item_factors_[item_idx]
        return self.user_factors_[user_idx] @ items.T


def build_model(kind: str, factors: int, split: Split, threads: int) -> Recommender:
    """A fitted 64-d (or `factors`-d) model: random factors, or ALS with a few sweeps."""
    if kind == "random":
        return RandomFactors(factors=factors).fit(split.train)
    model = get_model("als", factors=factors, iterations=5, num_threads=threads)
    return model.fit(split.train, valid=split.valid)


def bound(model: Recommender, users: np.ndarray, k: int) -> None:
    """The irreducible work of a full-ranking evaluation: the score product of the evaluated
    users and `torch.topk` of k + 1 per row, in the ranking path's block size."""
    step = rows_per_batch(model.n_items)
    for start in range(0, len(users), step):
        block = torch.from_numpy(model.score(users[start : start + step]))
        torch.topk(block, k + 1, dim=1)


def load_split(name: str) -> Split:
    """ml-100k / ml-1m as 8:1:1 random splits; gowalla as LightGCN's published split."""
    if name == "gowalla":
        from benchmarks.graph import gowalla_split

        return gowalla_split()
    return random_split_of(name)


def median_seconds(fn: Callable[[], object], repeats: int) -> dict[str, Any]:
    """Median and all wall times of `repeats` calls after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeats):
        with Timer() as t:
            fn()
        runs.append(round(t.seconds, 4))
    return {"median_s": statistics.median(runs), "runs_s": runs}


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, Any]:
    """Wall times of the functions called in turn, `repeats` rounds after a warm-up round:
    a load that drifts during the run hits every function alike (this machine is shared)."""
    for fn in fns.values():
        fn()
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            with Timer() as t:
                fn()
            runs[name].append(round(t.seconds, 4))
    return {name: {"median_s": statistics.median(r), "runs_s": r} for name, r in runs.items()}


def profile(fn: Callable[[], object], top: int) -> list[dict[str, Any]]:
    """cProfile one call: the `top` functions by own time, with call counts and cumulative time."""
    prof = cProfile.Profile()
    prof.runcall(fn)
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({name})",
                "ncalls": ncalls,
                "tottime_s": round(tottime, 4),
                "cumtime_s": round(cumtime, 4),
            }
        )
    return sorted(rows, key=lambda r: -r["tottime_s"])[:top]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time evaluation and ranking at each thread count, profile once, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=[*sorted(DATASETS), "gowalla"], default="ml-1m")
    parser.add_argument("--model", choices=("random", "als"), default="random")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile-top", type=int, default=15, help="0 skips the profile")
    parser.add_argument("--out", type=Path, help="result JSON")
    args = parser.parse_args(argv)
    split = load_split(args.dataset)
    train = split.train
    all_users = np.arange(train.n_users)
    test_users = split.test.active_users
    result: dict[str, Any] = {
        "dataset": args.dataset,
        "n_users": train.n_users,
        "n_items": train.n_items,
        "n_test_users": int(split.test.active_users.size),
        "model": args.model,
        "factors": args.factors,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "runs": [],
    }
    for threads in args.threads:
        set_threads(threads)
        with threadpool_limits(limits=threads):
            model = build_model(args.model, args.factors, split, threads)
            row = {
                "threads": threads,
                **interleaved(
                    {
                        "evaluate": lambda m=model: evaluate(m, split, ks=KS),
                        "bound_score_topk": lambda m=model: bound(m, test_users, max(KS)),
                    },
                    args.repeats,
                ),
                "topk_all_users": median_seconds(
                    lambda m=model: m.topk(all_users, max(KS), exclude=m.seen_), args.repeats
                ),
                "score_all_users": median_seconds(lambda m=model: m.score(all_users), args.repeats),
            }
            pairs = zip(row["evaluate"]["runs_s"], row["bound_score_topk"]["runs_s"], strict=True)
            row["evaluate_over_bound"] = round(statistics.median(e / b for e, b in pairs), 3)
        result["runs"].append(row)
        print(
            f"threads {threads}: evaluate {row['evaluate']['median_s']:.3f} s, "
            f"topk {row['topk_all_users']['median_s']:.3f} s, "
            f"score {row['score_all_users']['median_s']:.3f} s, bound (score + topk of the test "
            f"users) {row['bound_score_topk']['median_s']:.3f} s, evaluate / bound "
            f"{row['evaluate_over_bound']:.2f} (median of {args.repeats} pairs, called in turn)",
            flush=True,
        )
    if args.profile_top:
        set_threads(1)
        with threadpool_limits(limits=1):
            model = build_model(args.model, args.factors, split, 1)
            evaluate(model, split, ks=KS)
            result["profile_1_thread"] = profile(
                lambda: evaluate(model, split, ks=KS), args.profile_top
            )
        for r in result["profile_1_thread"]:
            print(f"  {r['tottime_s']:8.4f} s own {r['cumtime_s']:8.4f} s cum  {r['function']}")
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
