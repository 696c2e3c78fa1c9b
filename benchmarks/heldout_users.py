"""Held-out users ("strong generalization") on ml-1m: EASE, Mult-VAE, ItemKNN and ALS.

The protocol of the Mult-VAE paper (section 4.1) on ml-1m: users with at least 5 positives; 10 %
of them (seeded) are valid users and 10 % test users, held out of training entirely; each
held-out user's positives are split at random, 80 % given to the model as the query history
(the "fold-in" part) and 20 % the truth. Models never see a held-out user's id: each one is an
anonymous history (`QueryBatch.from_history`), history items are excluded from the ranking, and
the metrics are NDCG@100, Recall@20 and Recall@50, both as our `recall` (divided by the truth
size) and as the paper's `recall_capped` (divided by min(k, truth size)).

The ml-1m copy in ../shared/data has no rating values, so every rating is a positive (the paper
keeps ratings >= 3.5 on ML-20M; ratings >= 4 are not available here). Each model picks its
setting on VALID NDCG@100 (held-out valid users, scored the same way) and reports test there;
Mult-VAE trains with the paper's defaults and stops early on valid NDCG@100 (`valid_metric`),
within `--multvae-seconds`.

    .venv/bin/python benchmarks/heldout_users.py --threads 2 --out /tmp/tj/heldout-users.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATASETS, Timer, peak_rss_mb, set_threads
from tuijian.data import PrepareConfig, Split, build_dataset, load, prepare
from tuijian.data.split import user_holdout_split
from tuijian.evaluation import evaluate
from tuijian.models.registry import get_model
from tuijian.training import Trainer

KS = (20, 50, 100)
REPORTED = ("ndcg@100", "recall@20", "recall@50", "recall_capped@20", "recall_capped@50")
SELECT_ON = "ndcg@100"
METRICS = ("ndcg", "recall", "recall_capped")

GRIDS: dict[str, tuple[dict[str, Any], ...]] = {
    "ease": tuple({"l2": float(r)} for r in (100, 300, 1000, 3000)),
    "itemknn": ({"k_neighbors": 50}, {"k_neighbors": 100}, {"k_neighbors": 200, "shrink": 10.0}),
    "als": tuple({"factors": f, "regularization": r} for f in (64, 128) for r in (3.0, 10.0)),
    # the paper's Mult-VAE: [I -> 600 -> 200 -> 600 -> I], tanh, input dropout 0.5, batch 500
    # users, Adam lr 1e-3, KL annealed to 0.2 over 200,000 updates (all our defaults)
    "multvae": ({"epochs": 200, "valid_metric": "ndcg@100", "patience": 20},),
    # RecVAE (issue 12) at its paper's settings, trained like Mult-VAE
    "recvae": ({"epochs": 200, "valid_metric": "ndcg@100", "patience": 20},),
}
TRAINED = ("multvae", "recvae")  # torch models: the Trainer, early stopping, the time budget


def heldout_split_of(name: str, seed: int) -> Split:
    """ml-1m pairs, users with >= 5 positives, 10 % valid and 10 % test users held out."""
    fmt, path = DATASETS[name]
    raw = load(fmt, path)
    frame, _ = prepare(raw.interactions, PrepareConfig(min_user_interactions=5))
    data = build_dataset(frame, name=name)
    return user_holdout_split(data, valid=0.1, test=0.1, query_fraction=0.8, seed=seed)


def rounded(summary: dict[str, float]) -> dict[str, float]:
    return {key: round(float(summary[key]), 4) for key in REPORTED}


def run_one(
    name: str, params: dict[str, Any], split: Split, args: argparse.Namespace
) -> dict[str, Any]:
    """Fit on the training users, score valid and test held-out users from their histories."""
    extra: dict[str, Any] = {"num_threads": args.threads} if name == "als" else {}
    model = get_model(name, **params, **extra)
    fit_args: dict[str, Any] = {}
    if name in TRAINED:
        trainer = Trainer(threads=args.threads, max_seconds=args.multvae_seconds, progress=False)
        fit_args = {"valid": split.validation(), "trainer": trainer}
    with Timer() as fit:
        model.fit(split.train, **fit_args)
    valid = evaluate(model, split, part="valid", ks=KS, metrics=METRICS, beyond_accuracy=False)
    with Timer() as ev:
        test = evaluate(model, split, part="test", ks=KS, metrics=METRICS, beyond_accuracy=False)
    out: dict[str, Any] = {
        "params": params,
        "valid": rounded(valid.summary),
        "test": rounded(test.summary),
        "fit_s": round(fit.seconds, 2),
        "test_eval_s": round(ev.seconds, 3),
        "queries": test.protocol.get("queries"),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    if name in TRAINED:
        hist = trainer.history
        out |= {
            "epochs_run": len(hist.epochs),
            "best_epoch": hist.best_epoch,
            "stopped_by": hist.stopped_by,
            "valid_curve": [round(r.valid[SELECT_ON], 4) for r in hist.epochs if r.valid],
        }
    print(
        f"  {name} {params}: valid {SELECT_ON} {out['valid'][SELECT_ON]:.4f}, "
        f"test {out['test'][SELECT_ON]:.4f} (fit {out['fit_s']} s)",
        flush=True,
    )
    return out


def table(results: dict[str, Any]) -> str:
    """The markdown table of test figures at each model's picked setting."""
    head = "| model | picked on valid NDCG@100 | " + " | ".join(REPORTED) + " | fit s |"
    lines = [head, "|" + "---|" * (len(REPORTED) + 3)]
    for name, res in results.items():
        best = res["grid"][res["best"]]
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items()) or "defaults"
        cells = " | ".join(f"{best['test'][m]:.4f}" for m in REPORTED)
        lines.append(f"| {name} | {params} | {cells} | {best['fit_s']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-1m", choices=sorted(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--multvae-seconds", type=float, default=420.0, help="time budget of each torch fit"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/tj/heldout-users.json"))
    args = parser.parse_args()
    set_threads(args.threads)
    started = time.perf_counter()
    with threadpool_limits(args.threads):
        split = heldout_split_of(args.dataset, args.seed)
        print(f"{args.dataset}: {json.dumps(split.protocol['rows'])}", flush=True)
        results: dict[str, Any] = {}
        for name in args.models:
            print(f"[{name}] grid of {len(GRIDS[name])}", flush=True)
            grid = [run_one(name, p, split, args) for p in GRIDS[name]]
            scores = [r["valid"][SELECT_ON] for r in grid]
            results[name] = {"grid": grid, "best": scores.index(max(scores))}
    report = {
        "protocol": split.protocol,
        "dataset": args.dataset,
        "select_on": f"valid {SELECT_ON}",
        "threads": args.threads,
        "multvae_seconds": args.multvae_seconds,
        "results": results,
        "total_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
        "versions": {p: metadata.version(p) for p in ("torch", "numpy", "scipy")},
        "argv": sys.argv[1:],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(results))
    print(f"wrote {args.out} ({report['total_s']} s)")


if __name__ == "__main__":
    main()
