"""Defaults a new user can trust: each model's defaults against a small grid, on real data.

For every model and dataset this fits the defaults (what `tuijian compare` runs with no
`--set`) and each point of the model's grid, exactly as `tuijian train` does: early stopping
on valid NDCG@10, one thread, a time cap per fit. The best grid point is picked on VALID
NDCG@10 and its TEST NDCG@10 is compared with the defaults' (the issue's target: within 5 %
on ml-100k and ml-1m pairs, and a default fit on ml-100k under 2 minutes on one thread).

Datasets of different shapes, all random 8:1:1 per user with seed 2020 after preparation:
- ml-100k, ml-1m: dense movies (every rating a positive; ml-1m pairs only);
- retailrocket: a sparse shop (view 1, add_to_cart 3, purchase 5; users and items with >= 2 events);
- beauty: long-tail sequences (Amazon Beauty of S3Rec, 5-core by construction).

Each run is cached as JSON under TUIJIAN_BENCH_DIR/defaults/<dataset>/<model>/, so a rerun
with the same code resumes; `--fresh` ignores the cache.

    .venv/bin/python benchmarks/defaults.py --datasets ml-100k --out /tmp/tj/defaults.json
    .venv/bin/python benchmarks/defaults.py --datasets ml-100k --cached-only  # the table again
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA, SEED, WORK, Timer, set_threads
from tuijian.data import PrepareConfig, Split, build_dataset, load, prepare, random_split
from tuijian.evaluation import evaluate
from tuijian.models.registry import get_model, get_model_class
from tuijian.training import Trainer

SELECT_ON = "ndcg@10"
REPORTED = ("ndcg@10", "recall@10", "coverage@10")

# Each model's grid: the values a practitioner would try first, around the published settings.
GRIDS: dict[str, tuple[dict[str, Any], ...]] = {
    "pop": (),
    "itemknn": tuple({"k_neighbors": k} for k in (20, 50, 100, 200)),
    "userknn": tuple({"k_neighbors": k} for k in (20, 50, 100, 200)),
    "ease": tuple({"l2": float(x)} for x in (100, 250, 500, 1000, 2000)),
    "als": tuple(
        {"factors": f, "regularization": float(r)}
        for f in (64, 128)
        for r in (1, 3, 10, 15, 20, 30)
    ),
    "bpr": tuple({"lr": lr} for lr in (1e-3, 5e-3, 1e-2)),
    # the paper's reparameterisation noise (std 1) and RecBole's (0.01)
    "multvae": tuple({"lr": lr, "noise_std": n} for n in (1.0, 0.01) for lr in (1e-3, 3e-3)),
    "multdae": tuple({"lr": lr} for lr in (1e-3, 3e-3)),
    "cdae": tuple(
        {"activation": a, "lr": lr, "epochs": 300}
        for a in ("sigmoid", "relu")
        for lr in (1e-3, 3e-3, 1e-2)
    ),
    "gmf": tuple({"lr": lr} for lr in (1e-3, 5e-3)),
    "mlp": tuple({"lr": lr} for lr in (1e-3, 5e-3)),
    "neumf": tuple({"lr": lr} for lr in (1e-3, 5e-3)),
    # the paper's batch of 2,048 and fewer, larger steps (an epoch is six products over the graph)
    "lightgcn": tuple({"lr": lr} for lr in (1e-3, 5e-3, 1e-2))
    + tuple({"batch_size": 8192, "lr": lr} for lr in (4e-3, 1e-2)),
    "ngcf": tuple({"lr": lr} for lr in (1e-3, 5e-3))
    + tuple({"batch_size": 8192, "lr": lr} for lr in (4e-3, 1e-2)),
}


def split_of(name: str) -> Split:
    """The dataset, prepared as described in the module docstring, split 8:1:1 per user."""
    if name in ("ml-100k", "ml-1m"):
        raw = load("movielens", DATA / name)
        frame, _ = prepare(raw.interactions)
        data = build_dataset(frame, item_features=raw.item_features, name=name)
    elif name == "retailrocket":
        raw = load("retailrocket", DATA / "retailrocket-caserec")
        config = PrepareConfig(
            event_weights={"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0},  # its names
            default_event_weight=1.0,
            min_user_interactions=2,
            min_item_interactions=2,
        )
        frame, _ = prepare(raw.interactions, config)
        data = build_dataset(frame, name=name)
    elif name == "beauty":
        raw = load("sequence", DATA / "s3rec-amazon-yelp-lastfm" / "Beauty.txt")
        frame, _ = prepare(raw.interactions)
        data = build_dataset(frame, name=name)
    else:
        raise SystemExit(f"unknown dataset {name}")
    return random_split(data, (0.8, 0.1, 0.1), seed=SEED)


def run_key(model: str, params: dict[str, Any]) -> str:
    """The cache key: the model's whole resolved config (so a changed default is a new run)."""
    config = get_model(model, **params).config.model_dump(mode="json")
    text = json.dumps({"model": model, "config": config}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def run_one(
    model_name: str, params: dict[str, Any], split: Split, args: argparse.Namespace
) -> dict[str, Any]:
    """Fit like `tuijian train` (early stopping on valid), evaluate valid and test."""
    extra = {"num_threads": args.threads} if model_name == "als" else {}
    model = get_model(model_name, **params, **extra)
    trainable = hasattr(model.config, "epochs")
    fit_args: dict[str, Any] = {}
    trainer = None
    if trainable:
        trainer = Trainer(threads=args.threads, max_seconds=args.max_seconds, progress=False)
        fit_args = {"valid": split.validation(), "trainer": trainer}
    with Timer() as fit:
        model.fit(split.train, **fit_args)
    valid = evaluate(model, split, part="valid", ks=(10,), beyond_accuracy=False)
    test = evaluate(model, split, part="test", ks=(10,))
    out: dict[str, Any] = {
        "params": params,
        "valid": round(float(valid.summary[SELECT_ON]), 4),
        "test": {m: round(float(test.summary[m]), 4) for m in REPORTED},
        "fit_s": round(fit.seconds, 2),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    if trainer is not None:
        hist = trainer.history
        out |= {
            "epochs_run": len(hist.epochs),
            "best_epoch": hist.best_epoch,
            "stopped_by": hist.stopped_by,
        }
    return out


def cached_run(
    dataset: str, model: str, params: dict[str, Any], split: Split, args: argparse.Namespace
) -> dict[str, Any] | None:
    """The run's result, from the cache when an identical config ran before (None: not run
    and `--cached-only`)."""
    path = WORK / "defaults" / dataset / model / f"{run_key(model, params)}.json"
    if path.is_file() and not args.fresh:
        return json.loads(path.read_text())
    if args.cached_only:
        return None
    result = run_one(model, params, split, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


def describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def summarize(dataset: str, model: str, default: dict, grid: list[dict]) -> dict[str, Any]:
    """The best grid point on valid, and the defaults' test gap to it."""
    best = max([*grid, default], key=lambda r: r["valid"])
    gap = 1 - default["test"][SELECT_ON] / best["test"][SELECT_ON]
    top = max([*grid, default], key=lambda r: r["test"][SELECT_ON])  # hindsight: best on test
    top_gap = 1 - default["test"][SELECT_ON] / top["test"][SELECT_ON]
    return {
        "dataset": dataset,
        "model": model,
        "default": default,
        "best": best,
        "gap": gap,
        "best_on_test": top,
        "gap_on_test": top_gap,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| dataset | model | defaults: valid / test NDCG@10, cov@10 | fit s | epochs (stop) "
        "| best grid point (on valid) | its valid / test NDCG@10 | gap | best on test | gap |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, b, t = r["default"], r["best"], r["best_on_test"]
        epochs = f"{d['epochs_run']} ({d['stopped_by']})" if "epochs_run" in d else "-"
        lines.append(
            f"| {r['dataset']} | {r['model']} | {d['valid']:.4f} / {d['test']['ndcg@10']:.4f}, "
            f"{d['test']['coverage@10']:.3f} | {d['fit_s']} | {epochs} | {describe(b['params'])}"
            f" | {b['valid']:.4f} / {b['test']['ndcg@10']:.4f} | {100 * r['gap']:+.1f} %"
            f" | {describe(t['params'])}: {t['test']['ndcg@10']:.4f}"
            f" | {100 * r['gap_on_test']:+.1f} % |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-1m"])
    parser.add_argument("--models", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument("--only-defaults", action="store_true", help="skip the grids")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="cap of one fit")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs")
    parser.add_argument(
        "--cached-only", action="store_true", help="report the cached runs, run nothing"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/tj/defaults.json"))
    args = parser.parse_args()
    set_threads(args.threads)
    started = time.perf_counter()
    rows = []
    with threadpool_limits(args.threads):
        for dataset in args.datasets:
            split = split_of(dataset)
            print(f"{dataset}: {json.dumps(split.protocol.get('rows'))}", flush=True)
            for name in args.models:
                defaults = get_model_class(name)().config.model_dump()
                default = cached_run(dataset, name, {}, split, args)
                print(f"  {name} defaults: {json.dumps(default)}", flush=True)
                grid = []
                for params in () if args.only_defaults else GRIDS[name]:
                    if all(defaults.get(k) == v for k, v in params.items()):
                        continue  # the defaults themselves
                    point = cached_run(dataset, name, params, split, args)
                    print(f"  {name} {describe(params)}: {json.dumps(point)}", flush=True)
                    if point is not None:
                        grid.append(point)
                if default is not None:
                    rows.append(summarize(dataset, name, default, grid))
    report = {
        "select_on": f"valid {SELECT_ON}",
        "threads": args.threads,
        "max_seconds": args.max_seconds,
        "rows": rows,
        "total_s": round(time.perf_counter() - started, 1),
        "argv": sys.argv[1:],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(rows))
    print(f"wrote {args.out} ({report['total_s']} s)")


if __name__ == "__main__":
    main()
