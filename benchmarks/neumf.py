"""NeuMF on ml-1m, ours vs RecBole's, side by side on the same random 8:1:1 split.

Both sides: embedding size 64 (GMF and MLP), tower [128, 64], dropout 0.1, BCE with the same
number of uniform negatives per positive, batch size 2048 (pairs, RecBole's way of counting),
Adam, the same lr grid, early stopping on valid NDCG@10 (stop at the 11th pass without
improvement: RecBole's stopping_step 10, our patience 11), one thread each, training capped
at `--cap-seconds`. The best lr of each side (by valid NDCG@10) is reported. Our weights
after every epoch are kept and scored on test after training (outside the timed, capped
loop) to find when we first reach RecBole's final test NDCG@10.

    .venv/bin/python -m benchmarks.neumf --out /tmp/neumf.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    WORK,
    cached_recbole,
    export_for_recbole,
    peak_rss_mb,
    random_split_of,
    recbole_sets,
    run_recbole,
    set_threads,
    summarize_recbole,
    time_to_reach,
)
from tuijian.data import Split
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.ncf import NeuMF
from tuijian.training import Trainer

METRICS = ("ndcg", "recall")


class TrackedNeuMF(NeuMF):
    """NeuMF that keeps a copy of its weights after every training epoch (benchmark only).

    The copies are scored on test after `fit`, so the per-epoch test curve costs no time
    inside the timed (and capped) training.
    """

    snapshots: list[dict[str, torch.Tensor]]

    def invalidate_cache(self) -> None:
        super().invalidate_cache()
        module = getattr(self, "module_", None)
        if module is not None and module.training:  # right after a training epoch
            self.snapshots.append({k: v.detach().clone() for k, v in module.state_dict().items()})

    def test_curve(self, split: Split) -> list[dict[str, float]]:
        """Test metrics of every snapshot, in epoch order; restores the fitted weights."""
        fitted = {k: v.clone() for k, v in self.module_.state_dict().items()}
        curve = []
        for state in self.snapshots:
            self.module_.load_state_dict(state)
            self.invalidate_cache()
            res = evaluate(self, split, ks=(10,), metrics=METRICS, beyond_accuracy=False)
            curve.append(res.summary)
        self.module_.load_state_dict(fitted)
        self.invalidate_cache()
        return curve


def run_ours(split: Split, lr: float, args: argparse.Namespace) -> dict[str, Any]:
    """Fit our NeuMF with `lr`, tracking test per epoch; timings from the Trainer's history."""
    model = TrackedNeuMF(
        embedding_size=64,
        mlp_layers=(128, 64),
        dropout=0.1,
        n_negatives=args.n_negatives,
        batch_size=args.batch_size,
        lr=lr,
        epochs=args.epochs,
        patience=11,  # RecBole's stopping_step 10 stops at the 11th pass without improvement
        seed=args.seed,
    )
    model.snapshots = []
    trainer = Trainer(progress=False, max_seconds=args.cap_seconds, threads=args.threads)
    t0 = time.perf_counter()
    model.fit(split.train, valid=split.valid, trainer=trainer)
    wall = time.perf_counter() - t0
    epochs = trainer.history.epochs
    train_s = [e.train_seconds for e in epochs]
    valid_s = [e.valid_seconds for e in epochs]
    t_eval = time.perf_counter()
    final = evaluate(model, split, ks=(10,), metrics=METRICS, beyond_accuracy=False)
    test_eval_s = time.perf_counter() - t_eval
    model.invalidate_cache()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    evaluate(model, split, part="valid", ks=(10,), metrics=METRICS, beyond_accuracy=False)
    valid_pass = {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0}
    return {
        "lr": lr,
        "epochs_run": len(epochs),
        "best_epoch": trainer.history.best_epoch,
        "best_valid_ndcg@10": trainer.history.best_score,
        "stopped_by": trainer.history.stopped_by,
        "train_epoch_s": train_s,
        "valid_eval_s": valid_s,
        "valid_ndcg@10": [e.valid["ndcg@10"] for e in epochs if e.valid],
        "test_curve": model.test_curve(split),
        "median_train_s_per_epoch": statistics.median(train_s),
        "median_eval_s_per_pass": statistics.median(valid_s),
        "train_total_s": sum(train_s),
        "fit_wall_s": wall,
        "test_eval_s": test_eval_s,
        "valid_pass_after_fit": valid_pass,
        "test_result": final.summary,
    }


def recbole_args(lr: float, epochs: int, args: argparse.Namespace) -> list[str]:
    """run.py arguments for RecBole's NeuMF with the same settings as ours."""
    sets: dict[str, object] = {
        "learning_rate": lr,
        "mf_embedding_size": 64,
        "mlp_embedding_size": 64,
        "mlp_hidden_size": "[128,64]",
        "dropout_prob": 0.1,
        "train_batch_size": args.batch_size,
    }
    if args.n_negatives != 1:  # RecBole's default is one uniform negative
        sets["train_neg_sample_args"] = (
            "{'distribution': 'uniform', 'alpha': 1.0, 'dynamic': False, 'candidate_num': 0, "
            f"'sample_num': {args.n_negatives}}}"
        )
    out = ["--epochs", str(epochs), "--seed", str(args.seed)]
    if args.cap_seconds:
        out += ["--cap-seconds", str(args.cap_seconds)]
    return out + recbole_sets(sets)


def run_recbole_side(split_dir: Path, out_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """RecBole's NeuMF for every lr (reusing results of an identical earlier run if asked)."""
    runs = []
    for lr in args.lrs:
        out_json = out_dir / f"recbole_neumf_lr{lr:g}.json"
        argv = recbole_args(lr, args.epochs, args)
        res = cached_recbole(
            "NeuMF", split_dir, out_json, argv, threads=args.threads, reuse=args.reuse_recbole
        )
        runs.append({"lr": lr, **res})
    best = max(runs, key=lambda r: r["best_valid_score"])
    probe = None
    if args.big_eval_probe:
        out_json = out_dir / "recbole_neumf_big_eval.json"
        # two epochs suffice to time a validation pass
        probe_args = [*recbole_args(best["lr"], 2, args), "--set", "eval_batch_size=409600"]
        probe = run_recbole("NeuMF", split_dir, out_json, threads=args.threads, args=probe_args)
    return {"runs": runs, "best": best, "big_eval_probe": probe}


def main() -> None:
    """Run both sides and write one JSON with everything the report table needs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--lrs", type=float, nargs="+", default=[0.001, 0.005])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--cap-seconds", type=float, default=600.0)
    p.add_argument("--n-negatives", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--skip-recbole", action="store_true")
    p.add_argument("--reuse-recbole", action="store_true", help="reuse identical earlier runs")
    p.add_argument("--big-eval-probe", action="store_true", help="RecBole eval_batch_size=409600")
    args = p.parse_args()
    set_threads(args.threads)
    out_dir = WORK / "neumf"
    out_dir.mkdir(parents=True, exist_ok=True)
    split = random_split_of("ml-1m")
    split_dir = export_for_recbole(split, WORK / "ml-1m")
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}

    recbole = None if args.skip_recbole else run_recbole_side(split_dir, out_dir, args)
    ours_runs = [run_ours(split, lr, args) for lr in args.lrs]
    ours = max(ours_runs, key=lambda r: r["best_valid_ndcg@10"])
    result["ours"] = {"runs": ours_runs, "best_lr": ours["lr"], "peak_rss_mb": peak_rss_mb()}
    if recbole is not None:
        rb = summarize_recbole(recbole["best"])
        target = rb["test_result"]["ndcg@10"]
        reach = time_to_reach(ours, target)
        result["recbole"] = {
            "best": rb,
            "runs": [summarize_recbole(r) for r in recbole["runs"]],
            "big_eval_probe": recbole["big_eval_probe"]
            and summarize_recbole(recbole["big_eval_probe"]),
        }
        result["time_to_recbole_ndcg"] = {
            "target_ndcg@10": target,
            "ours": reach,
            "recbole_time_to_best_epoch_s": rb["time_to_best_epoch_s"],
            "speedup_train_plus_valid": reach
            and rb["time_to_best_epoch_s"] / reach["train_plus_valid_s"],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps({k: v for k, v in result.items() if k != "ours"}, indent=2, default=float))
    print(
        "ours best lr", ours["lr"], "test", ours["test_result"],
        "train s/epoch", round(ours["median_train_s_per_epoch"], 2),
        "eval s/pass", round(ours["median_eval_s_per_pass"], 2),
        "peak rss MB", round(peak_rss_mb()),
    )  # fmt: skip


if __name__ == "__main__":
    main()
