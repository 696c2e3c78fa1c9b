"""Rerun our side of two scoreboard rows (BPR-MF and EASE on ml-1m) and print accuracy and time.

The settings are the picks of docs/benchmarks/bpr.md and docs/benchmarks/classic.md: BPR-MF
with embedding 64, batch 2,048, lr 1e-3, one uniform negative, early stopping after 11 stale
validations; EASE with l2 = 1,000. Only the public API of every tuijian version since the first
is used, so the same file times an older checkout side by side (`PYTHONPATH=OLD/src:OLD`).

    .venv/bin/python -m benchmarks.scoreboard_check --out /tmp/scoreboard.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from benchmarks.common import SEED, random_split_of
from tuijian.evaluation import evaluate
from tuijian.models.registry import get_model
from tuijian.training import Trainer

METRICS = ("ndcg", "recall")


def run(name: str, split, params: dict) -> dict:
    """Fit on train (validating on valid for torch models), evaluate on test; timings."""
    model = get_model(name, **params)
    trainer = Trainer(progress=False) if name == "bpr" else None
    t0 = time.perf_counter()
    model.fit(split.train, valid=split.valid, trainer=trainer)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = evaluate(model, split, ks=(10,), metrics=METRICS, beyond_accuracy=False)
    out = {
        "model": name,
        "params": params,
        "test_ndcg@10": round(result["ndcg@10"], 4),
        "test_recall@10": round(result["recall@10"], 4),
        "fit_s": round(fit_s, 2),
        "test_eval_s": round(time.perf_counter() - t1, 3),
    }
    if trainer is not None:
        epochs = trainer.history.epochs
        out["epochs_run"] = len(epochs)
        out["best_epoch"] = trainer.history.best_epoch
        out["median_train_s_per_epoch"] = round(
            statistics.median(e.train_seconds for e in epochs), 3
        )
        out["median_valid_s_per_pass"] = round(
            statistics.median(e.valid_seconds for e in epochs if e.valid_seconds), 3
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ease", "bpr"], choices=["ease", "bpr"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = random_split_of("ml-1m")
    params = {
        "ease": {"l2": 1000.0},
        "bpr": {
            "embedding_size": 64,
            "batch_size": 2048,
            "lr": 1e-3,
            "patience": 11,
            "epochs": 300,
            "seed": SEED,
        },
    }
    rows = []
    with threadpool_limits(limits=1):
        for name in args.models:
            rows.append(run(name, split, params[name]))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
