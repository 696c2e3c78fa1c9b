"""BPR-MF on ml-1m, ours vs RecBole's BPR, side by side on the same random 8:1:1 split.

Both sides: embedding size 64, one uniform negative per positive, BPR loss, batch size 2048
(RecBole's train_batch_size), Adam, the same lr grid, early stopping on valid NDCG@10 (RecBole
stops after 11 passes without improvement, its stopping_step 10; our `patience` counts the same
way when set to 11), full ranking, one thread each, RecBole capped at `--cap-seconds` and
`--recbole-epochs`. Each side picks its lr on valid NDCG@10 and reports test at that checkpoint.
Our test NDCG@10 is also measured after every epoch by a Trainer callback (untimed: callbacks
do not count in the epoch timings) to find when we first reach RecBole's final test NDCG@10.

    .venv/bin/python -m benchmarks.bpr --out /tmp/bpr.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    WORK,
    cached_recbole,
    export_for_recbole,
    peak_rss_mb,
    random_split_of,
    recbole_sets,
    set_threads,
    summarize_recbole,
    time_to_reach,
)
from tuijian.data import Split
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.classic.bpr_mf import BPRMF
from tuijian.models.neural import TorchRecommender
from tuijian.training import EpochRecord, Trainer

METRICS = ("ndcg", "recall")


def test_tracker(split: Split, curve: list[dict[str, float]]) -> Any:
    """A Trainer callback appending test NDCG/Recall@10 after every epoch (benchmark only)."""

    def track(model: TorchRecommender, record: EpochRecord) -> None:
        res = evaluate(model, split, ks=(10,), metrics=METRICS, beyond_accuracy=False)
        curve.append(res.summary)
        record.extra.update({f"test_{k}": v for k, v in res.summary.items()})

    return track


def run_ours(split: Split, lr: float, args: argparse.Namespace) -> dict[str, Any]:
    """Fit our BPR with `lr`, tracking test per epoch; timings from the Trainer's history."""
    model = BPRMF(
        embedding_size=64,
        n_negatives=1,
        batch_size=args.batch_size,
        lr=lr,
        reg=args.reg,
        init_std=args.init_std,
        epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
    )
    curve: list[dict[str, float]] = []
    trainer = Trainer(progress=False, threads=args.threads, callbacks=[test_tracker(split, curve)])
    t0 = time.perf_counter()
    model.fit(split.train, valid=split.valid, trainer=trainer)
    wall = time.perf_counter() - t0
    epochs = trainer.history.epochs
    train_s = [e.train_seconds for e in epochs]
    valid_s = [e.valid_seconds for e in epochs]
    t_eval = time.perf_counter()
    final = evaluate(model, split, ks=(10,), metrics=METRICS, beyond_accuracy=False)
    test_eval_s = time.perf_counter() - t_eval
    return {
        "lr": lr,
        "reg": args.reg,
        "init_std": args.init_std,
        "epochs_run": len(epochs),
        "best_epoch": trainer.history.best_epoch,
        "best_valid_ndcg@10": trainer.history.best_score,
        "stopped_by": trainer.history.stopped_by,
        "train_epoch_s": train_s,
        "valid_eval_s": valid_s,
        "valid_ndcg@10": [e.valid["ndcg@10"] for e in epochs if e.valid],
        "test_curve": curve,
        "median_train_s_per_epoch": statistics.median(train_s),
        "median_eval_s_per_pass": statistics.median(valid_s),
        "train_total_s": sum(train_s),
        "fit_wall_s_with_test_tracking": wall,
        "test_eval_s": test_eval_s,
        "test_result": final.summary,
    }


def recbole_args(lr: float, args: argparse.Namespace) -> list[str]:
    """run.py arguments for RecBole's BPR with the same settings as ours."""
    out = ["--epochs", str(args.recbole_epochs), "--seed", str(args.seed)]
    if args.cap_seconds:
        out += ["--cap-seconds", str(args.cap_seconds)]
    sets = {"learning_rate": lr, "embedding_size": 64, "train_batch_size": args.batch_size}
    return out + recbole_sets(sets)


def run_recbole_side(split_dir: Path, out_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """RecBole's BPR for every lr (reusing an identical earlier run's JSON if asked)."""
    runs = []
    for lr in args.lrs:
        out_json = out_dir / f"recbole_bpr_lr{lr:g}.json"
        argv = recbole_args(lr, args)
        res = cached_recbole(
            "BPR", split_dir, out_json, argv, threads=args.threads, reuse=args.reuse_recbole
        )
        runs.append({"lr": lr, **res})
    return {"runs": runs, "best": max(runs, key=lambda r: r["best_valid_score"])}


def main() -> None:
    """Run both sides and write one JSON with everything the report table needs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--lrs", type=float, nargs="+", default=[0.001, 0.005])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--patience", type=int, default=11)
    p.add_argument("--reg", type=float, default=BPRMF.config_class.model_fields["reg"].default)
    p.add_argument(
        "--init-std", type=float, default=BPRMF.config_class.model_fields["init_std"].default
    )
    p.add_argument("--recbole-epochs", type=int, default=300)
    p.add_argument("--cap-seconds", type=float, default=400.0, help="RecBole's training cap")
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--skip-recbole", action="store_true")
    p.add_argument("--reuse-recbole", action="store_true", help="reuse identical earlier runs")
    args = p.parse_args()
    set_threads(args.threads)
    out_dir = WORK / "bpr"
    out_dir.mkdir(parents=True, exist_ok=True)
    split = random_split_of("ml-1m")
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    recbole = None
    if not args.skip_recbole:
        recbole = run_recbole_side(export_for_recbole(split, WORK / "ml-1m"), out_dir, args)
    ours_runs = [run_ours(split, lr, args) for lr in args.lrs]
    ours = max(ours_runs, key=lambda r: r["best_valid_ndcg@10"])
    result["ours"] = {"runs": ours_runs, "best_lr": ours["lr"], "peak_rss_mb": peak_rss_mb()}
    if recbole is not None:
        rb = summarize_recbole(recbole["best"])
        target = rb["test_result"]["ndcg@10"]
        reach = time_to_reach(ours, target)
        result["recbole"] = {"best": rb, "runs": [summarize_recbole(r) for r in recbole["runs"]]}
        result["time_to_recbole_ndcg"] = {
            "target_ndcg@10": target,
            "ours": reach,
            "recbole_time_to_best_epoch_s": rb["time_to_best_epoch_s"],
            "recbole_train_total_s": rb["train_total_s"],
            "speedup_vs_time_to_best": reach
            and rb["time_to_best_epoch_s"] / reach["train_plus_valid_s"],
            "speedup_train_only_vs_train_total": reach and rb["train_total_s"] / reach["train_s"],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps({k: v for k, v in result.items() if k != "ours"}, indent=2, default=float))
    for run in ours_runs:
        print(
            "ours lr", run["lr"], "best epoch", run["best_epoch"], "of", run["epochs_run"],
            "test", {k: round(v, 4) for k, v in run["test_result"].items()},
            "train s/epoch", round(run["median_train_s_per_epoch"], 3),
            "eval s/pass", round(run["median_eval_s_per_pass"], 3),
        )  # fmt: skip
    print("peak rss MB", round(peak_rss_mb()))


if __name__ == "__main__":
    main()
