"""The two-stage pipeline against its stages on the shop logs: NDCG@10 and Recall@50 of the
items each test user bought, full ranking with the training items hidden, and the candidate
recall@N of the retrieval stage (the share of bought test items among its top-N: the
ceiling of any ranker). Datasets and splits: `benchmarks/shop.py`.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.pipeline \
        --data synthetic,retailrocket,taobao --out ../tmp/pipeline.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import set_threads
from benchmarks.shop import BUY, shop_split
from benchmarks.two_tower import parse_sets
from tuijian.data import Columns
from tuijian.evaluation.evaluate import evaluate_ranking
from tuijian.models.base import Recommender
from tuijian.models.registry import get_model
from tuijian.training import Trainer

C = Columns


def measure(model: Recommender, truth: Any, train: Any, n: int) -> dict[str, float]:
    """NDCG@10, Recall@10/50 and Recall@n of bought items (train items hidden)."""
    res = evaluate_ranking(
        model,
        truth,
        exclude=[train],
        ks=(10, 50, n),
        metrics=("ndcg", "recall"),
        beyond_accuracy=False,
    )
    keys = ("ndcg@10", "recall@10", "recall@50", f"recall@{n}")
    return {k: round(res[k], 4) for k in keys}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic,retailrocket,taobao")
    parser.add_argument("--retrieval", default="twotower")
    parser.add_argument("--ranker", default="deepfm")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--retrieval-set", action="append", default=[])
    parser.add_argument("--ranker-set", action="append", default=[])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    result: dict[str, Any] = {"retrieval": args.retrieval, "ranker": args.ranker}
    retrieval_params = {"epochs": 20, **parse_sets(args.retrieval_set)}
    ranker_params = {"epochs": 10, **parse_sets(args.ranker_set)}
    result.update(retrieval_params=retrieval_params, ranker_params=ranker_params)
    for name in args.data.split(","):
        split = shop_split(name)
        buys = split.test.with_interactions(
            split.test.interactions.filter(pl.col(C.event) == BUY), name=f"{name}-buys"
        )
        t0 = time.perf_counter()
        pipeline = get_model(
            "pipeline",
            retrieval=args.retrieval,
            retrieval_params=retrieval_params,
            ranker=args.ranker,
            ranker_params=ranker_params,
            candidates=args.candidates,
        ).fit(split.train, trainer=Trainer(progress=False))
        fit_s = time.perf_counter() - t0
        n = args.candidates
        entry: dict[str, Any] = {
            "users_with_buys": int(buys.active_users.size),
            "bought_test_pairs": buys.n_interactions,
            "fit_s": round(fit_s, 1),
            "pop": measure(get_model("pop").fit(split.train), buys, split.train, n),
            "retrieval": measure(pipeline.retrieval_stage, buys, split.train, n),
            "ranker_alone": measure(pipeline.ranking_stage, buys, split.train, n),
            "pipeline": measure(pipeline, buys, split.train, n),
        }
        result[name] = entry
        print(name, json.dumps(entry), flush=True)
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
