"""Multi-behaviour learning on the shop logs: predicting buys with the two-tower model.

Test truth: the test pairs whose strongest event is a buy (`benchmarks/shop.py`: global time
cut on the synthetic shop and Taobao, random 8:2 on RetailRocket); every variant hides the
same items (the whole training part) and is scored by NDCG@10 and Recall@50.

- `buys-only`: trained on the bought training pairs alone (histories and targets are buys;
  users who never bought get the popularity fallback).
- `all-as-one`: every behaviour with weight 1, every pair a target.
- `weighted`: behaviours weighted (view 1, cart 3, buy 5 ...), every pair a target.
- `multi`: behaviours weighted in the histories, only bought pairs as targets
  (`target_events=("buy",)`), trained `--buy-epochs` epochs (fewer targets an epoch).
- `typed`: the behaviour-typed user tower (`behaviour_typed=True`: one history pool per
  event type, concatenated), every pair a target.
- `typed-sum`: behaviour-typed pools summed, each times a learned weight (`behaviour_pooling=
  "sum"`), every pair a target.
- `typed-gated`: behaviour-typed, one pool: a learned weight per event type scales the
  items' weights and a learned behaviour vector is added to each item (`behaviour_pooling=
  "gated"`; it starts as `weighted`), every pair a target.
- `typed-heads`: behaviour-typed pools and one user head per target event (`predict_event=
  "buy"`): every pair a target, predicted by the head of its own event; scored by the buy head.
- `typed-buys`: the behaviour-typed tower with only bought pairs as targets (`--buy-epochs`).

`--variants` runs a subset (comma-separated labels).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.multi_behaviour \
        --data synthetic,retailrocket,taobao --out ../tmp/multi.json
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
from tuijian.models.registry import get_model
from tuijian.training import Trainer

C = Columns


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic,retailrocket,taobao")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--buy-epochs", type=int, default=60)
    parser.add_argument("--variants", default="")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    params = {"batch_size": 256, **parse_sets(args.sets)}
    result: dict[str, Any] = {"twotower": params, "epochs": args.epochs}
    for name in args.data.split(","):
        split = shop_split(name)
        train = split.train
        buys = split.test.with_interactions(
            split.test.interactions.filter(pl.col(C.event) == BUY), name=f"{name}-buys"
        )
        inter = train.interactions
        variants = {
            "buys-only": (train.with_interactions(inter.filter(pl.col(C.event) == BUY)), {}),
            "all-as-one": (
                train.with_interactions(
                    inter.with_columns(pl.lit(1.0).alias(C.weight).cast(pl.Float32))
                ),
                {},
            ),
            "weighted": (train, {}),
            "multi": (train, {"target_events": (BUY,), "epochs": args.buy_epochs}),
            "typed": (train, {"behaviour_typed": True}),
            "typed-sum": (train, {"behaviour_typed": True, "behaviour_pooling": "sum"}),
            "typed-gated": (train, {"behaviour_typed": True, "behaviour_pooling": "gated"}),
            "typed-heads": (train, {"behaviour_typed": True, "predict_event": BUY}),
            "typed-buys": (
                train,
                {"behaviour_typed": True, "target_events": (BUY,), "epochs": args.buy_epochs},
            ),
        }
        if args.variants:
            variants = {k: variants[k] for k in args.variants.split(",")}
        entry: dict[str, Any] = {"bought_test_pairs": buys.n_interactions}
        for label, (data, extra) in variants.items():
            t0 = time.perf_counter()
            config = {"epochs": args.epochs, **params, **extra}
            model = get_model("twotower", **config).fit(data, trainer=Trainer(progress=False))
            res = evaluate_ranking(
                model,
                buys,
                exclude=[train],
                ks=(10, 50),
                metrics=("ndcg", "recall"),
                beyond_accuracy=False,
            )
            entry[label] = {
                "ndcg@10": round(res["ndcg@10"], 4),
                "recall@50": round(res["recall@50"], 4),
                "train_pairs": data.n_interactions,
                "fit_s": round(time.perf_counter() - t0, 1),
            }
            print(name, label, entry[label], flush=True)
        result[name] = entry
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
