"""Sequence models on the S3Rec datasets (Beauty, Yelp, LastFM) and ml-100k (by timestamp):
leave-one-out, full ranking.

Each user's last item is the test item, the second to last the validation item (early stopping
on valid NDCG@10, train items excluded there), the rest trains. Test: the validation item is
given after the training history; metrics with the user's items excluded and not (papers do
not exclude them). One thread, as on the 2-core machine.

    nice -n 10 .venv/bin/python benchmarks/sequential.py --model sasrec --dataset Beauty

`--latency 1000` also times `recommend` for 1,000 anonymous sessions of 50 items (one thread).
`--valid-all-items` adds to the curve the valid NDCG@10 with no item excluded (RecBole's
protocol), so the two libraries' curves compare; its passes do not count in the budget.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.common import DATA, DATASETS, peak_rss_mb, set_threads
from tuijian.data import build_dataset, leave_last_out_split, load
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.query import Query
from tuijian.models.registry import get_model
from tuijian.training import Trainer
from tuijian.training.history import EpochRecord

S3REC = DATA / "s3rec-amazon-yelp-lastfm"


def recbole_parts(folder: Path) -> pl.DataFrame:
    """The split RecBole used (`run.py --dump-split DIR`) as one frame whose timestamp is the
    row's place in train (RecBole's order), then valid, then test: leave-last-out of it gives
    back exactly RecBole's parts, ties in time included."""
    frames = [
        pl.read_csv(folder / f"{part}.inter", separator="\t", infer_schema=False)
        for part in ("train", "valid", "test")
    ]
    frame = pl.concat([f.select(f.columns[:2]) for f in frames])
    frame.columns = ["user_id", "item_id"]
    return frame.with_columns(timestamp=pl.int_range(pl.len()).cast(pl.Float64))


def all_items_curve(split: Any, scores: dict[int, float]) -> Any:
    """Epoch callback: valid NDCG@10 over all items, no train item excluded (RecBole's valid
    protocol), stored in `scores` by epoch; the trainer's own valid pass excludes them."""

    def callback(model: Any, record: EpochRecord) -> None:
        res = evaluate(
            model,
            split,
            part="valid",
            ks=(10,),
            metrics=("ndcg",),
            beyond_accuracy=False,
            exclude_seen=False,
        )
        scores[record.epoch] = res.summary["ndcg@10"]

    return callback


def run(args: argparse.Namespace) -> dict[str, Any]:
    set_threads(1)
    if args.recbole_split is not None:
        raw_frame = recbole_parts(args.recbole_split)
        split = leave_last_out_split(build_dataset(raw_frame, name=args.dataset))
    elif args.dataset in DATASETS:  # MovieLens: every rating an interaction, ordered by time
        fmt, path = DATASETS[args.dataset]
        raw = load(fmt, path)
    else:
        raw = load("sequence", S3REC / f"{args.dataset}.txt")
    if args.recbole_split is None:
        split = leave_last_out_split(build_dataset(raw.interactions, name=args.dataset))
    overrides = json.loads(args.set) if args.set else {}
    model = get_model(args.model, **overrides)
    all_items: dict[int, float] = {}
    callbacks = [all_items_curve(split, all_items)] if args.valid_all_items else []
    trainer = Trainer(
        threads=1,
        max_seconds=args.max_seconds,
        precision=args.precision,
        progress=False,
        log_path=args.log,
        callbacks=callbacks,
    )
    t0 = time.perf_counter()
    model.fit(split.train, valid=split.valid, trainer=trainer)
    history = trainer.history
    fit_s = time.perf_counter() - t0
    curve, wall = [], 0.0
    for rec in history.epochs:
        wall += rec.train_seconds + rec.valid_seconds
        curve.append(
            {
                "epoch": rec.epoch,
                "valid_ndcg@10": (rec.valid or {}).get("ndcg@10"),
                **({"valid_all_items_ndcg@10": all_items.get(rec.epoch)} if all_items else {}),
                "train_s": round(rec.train_seconds, 2),
                "wall_s": round(wall, 1),
            }
        )
    results = {}
    for exclude in (False, True):
        res = evaluate(
            model,
            split,
            part="test",
            ks=(10, 20),
            metrics=("ndcg", "hit"),
            beyond_accuracy=False,
            exclude_seen=exclude,
            valid_as_history=True,
        )
        results["exclude_seen" if exclude else "all_items"] = {
            k: round(v, 4) for k, v in res.summary.items()
        }
    latency = session_latency(model, args.latency) if args.latency else None
    return {
        "model": args.model,
        "dataset": args.dataset,
        "session_latency_ms": latency,
        "config": model.config.model_dump(),
        "precision": args.precision,
        "fit_s": round(fit_s, 1),
        "best_epoch": history.best_epoch,
        "stopped_by": history.stopped_by,
        "test": results,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "curve": curve,
    }


def session_latency(model: Any, calls: int, length: int = 50, k: int = 10) -> dict[str, float]:
    """Milliseconds of `recommend` for one anonymous session of `length` distinct items over
    the whole catalogue (its items excluded), one thread: median and p99 of `calls` sessions."""
    rng = np.random.default_rng(0)
    ids = model.items_.ids
    sessions = [ids[rng.choice(len(ids), length, replace=False)].tolist() for _ in range(calls)]
    model.recommend([Query(items=sessions[0])], k)  # warm-up
    times = np.empty(calls)
    for n, session in enumerate(sessions):
        start = time.perf_counter()
        model.recommend([Query(items=session)], k)
        times[n] = time.perf_counter() - start
    ms = times * 1e3
    return {
        "calls": calls,
        "session_length": length,
        "n_items": len(ids),
        "p50": round(float(np.median(ms)), 3),
        "p99": round(float(np.percentile(ms, 99)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sasrec", choices=["sasrec", "gru4rec", "bert4rec"])
    parser.add_argument(
        "--dataset", default="Beauty", choices=["Beauty", "Yelp", "LastFM", "ml-100k"]
    )
    parser.add_argument("--set", default="", help='config overrides as JSON, e.g. {"lr": 1e-3}')
    parser.add_argument("--max-seconds", type=float, default=1200.0)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--log", default=None, help="JSON-lines log of the epochs")
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    parser.add_argument(
        "--latency", type=int, default=0, help="also time N one-session recommend calls"
    )
    parser.add_argument(
        "--recbole-split",
        type=Path,
        default=None,
        metavar="DIR",
        help="train / valid / test of RecBole's run.py --dump-split DIR instead of our split",
    )
    parser.add_argument(
        "--valid-all-items",
        action="store_true",
        help="also record the valid NDCG@10 with no item excluded (RecBole's protocol) per epoch",
    )
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
