"""Classical recommenders, ours against RecBole 1.2.1, on exactly the same split.

Ratings as implicit interactions, random 8:1:1 per user (seed 2020), full ranking over all
items, cut-offs 10 and 20. Each family runs the same hyper-parameter grid on both sides; each
side picks its configuration on VALID NDCG@10 and reports it on test. The picked configurations
are timed `--repeats` times (medians reported).

    .venv/bin/python benchmarks/classic.py --dataset ml-100k --out /tmp/tj/classic-ml-100k.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    DATASETS,
    WORK,
    Timer,
    export_for_recbole,
    random_split_of,
    recbole_sets,
    run_recbole,
    set_threads,
)
from tuijian.data import Split
from tuijian.evaluation import evaluate
from tuijian.models.base import SCORE_BUDGET
from tuijian.models.registry import get_model

KS = (10, 20)
REPORTED = tuple(f"{m}@{k}" for k in KS for m in ("ndcg", "recall", "precision", "hit", "mrr"))
SELECT_ON = "ndcg@10"


@dataclass(frozen=True)
class Family:
    """One model on both sides: our registry name, RecBole's class, the shared grid."""

    ours: str
    recbole: str | None
    grid: tuple[dict[str, Any], ...]
    to_recbole: Callable[[dict[str, Any]], dict[str, Any]] = lambda p: {}
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    peer_references: dict[str, dict[str, Any]] = field(default_factory=dict)


FAMILIES: dict[str, Family] = {
    # RecBole's Pop counts an item once per training batch however often it occurs there
    # (RUCAIBox/RecBole#2198); with one interaction per batch its counts are exact.
    "pop": Family("pop", "Pop", ({},), peer_references={"exact counts": {"train_batch_size": 1}}),
    "itemknn": Family(
        "itemknn",
        "ItemKNN",
        tuple({"k_neighbors": k, "shrink": s} for k in (50, 100, 200) for s in (0.0, 10.0)),
        lambda p: {"k": p["k_neighbors"], "shrink": p["shrink"]},
    ),
    "ease": Family(
        "ease",
        "EASE",
        tuple({"l2": float(r)} for r in (100, 250, 500, 1000, 2000)),
        lambda p: {"reg_weight": p["l2"]},
    ),
    # RecBole 1.2.1 has no ALS (recbole.model.general_recommender); implicit's own defaults
    # (factors 100, regularization 0.01, alpha 1, 15 iterations) are the reference instead.
    "als": Family(
        "als",
        None,
        tuple(
            {"factors": f, "regularization": r} for f in (64, 128) for r in (3.0, 10.0, 30.0, 100.0)
        ),
        references={
            "implicit defaults": {"factors": 100, "regularization": 0.01, "alpha": 1.0},
            "tuijian defaults": {},
        },
    ),
    # Our picks on valid in docs/benchmarks/graph_filters.md; RecBole's closest settings:
    # alpha 0 makes its L2 term plain lambda2 (ours has no item-frequency power), k = our
    # iterations. Its own defaults (lambda1 3, lambda2 200, alpha 0.5, rho 4000, k 100) beside.
    "admmslim": Family(
        "admmslim",
        "ADMMSLIM",
        ({"l1": 1.0, "l2": 500.0, "rho": 10_000.0, "n_iter": 50},),
        lambda p: {
            "lambda1": p["l1"],
            "lambda2": p["l2"],
            "alpha": 0.0,
            "rho": p["rho"],
            "k": p["n_iter"],
        },
        # fewer ADMM iterations (the time-to-accuracy curve of our fit), and RecBole's defaults
        references={
            **{
                f"n_iter {n}": {"l1": 1.0, "l2": 500.0, "rho": 10_000.0, "n_iter": n}
                for n in (2, 5, 10, 20)
            },
            "RecBole's defaults": {
                "l1": 3.0,
                "l2": 200.0,
                "alpha": 0.5,
                "rho": 4000.0,
                "n_iter": 100,
            },
        },
        peer_references={
            "defaults": {"lambda1": 3.0, "lambda2": 200.0, "alpha": 0.5, "rho": 4000.0, "k": 100}
        },
    ),
    # The paper's settings on both sides (RecBole's RecVAE.yaml has the same network, gamma,
    # prior weights and 3 encoder / 1 decoder passes); lr 5e-4 and 500 users per batch as ours.
    "recvae": Family(
        "recvae",
        "RecVAE",
        ({},),
        lambda p: {"learning_rate": 5e-4, "train_batch_size": 500},
    ),
}


@contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send this process's (and its children's) stdout and stderr to `log` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def metric_subset(summary: dict[str, float]) -> dict[str, float]:
    """The metrics both libraries report, rounded like RecBole (4 places)."""
    return {key: round(float(summary[key]), 4) for key in REPORTED}


def run_ours(name: str, params: dict[str, Any], split: Split, threads: int) -> dict[str, Any]:
    """Fit one of our models, evaluate it on valid (untimed) and test (timed, all metrics)."""
    extra = {"num_threads": threads} if name == "als" else {}
    model = get_model(name, **params, **extra)
    with Timer() as fit:
        model.fit(split.train, valid=split.valid)
    valid = evaluate(model, split, part="valid", ks=KS, beyond_accuracy=False)
    with Timer() as ev:
        test = evaluate(model, split, ks=KS)
    return {
        "params": params,
        "valid": metric_subset(valid.summary),
        "test": metric_subset(test.summary),
        "fit_s": round(fit.seconds, 4),
        "eval_s": round(ev.seconds, 4),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def run_peer(
    model: str, params: dict[str, Any], split_dir: Path, out: Path, threads: int, eval_batch: int
) -> dict[str, Any]:
    """Run RecBole's `model` with `params` on the exported split (its output goes to a log)."""
    args = recbole_sets({"eval_batch_size": eval_batch, **params})
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".stdout.log")
    try:
        with output_to(log):
            res = run_recbole(model, split_dir, out, threads=threads, args=args)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(
            f"RecBole {model} {params} failed (exit {exc.returncode}); see {log}"
        ) from None
    return {
        "params": params,
        "valid": {k: res["best_valid_result"][k] for k in REPORTED},
        "test": {k: res["test_result"][k] for k in REPORTED},
        "train_total_s": round(res["train_total_s"], 4),
        "test_eval_s": round(res["test_eval_s"], 4),
        "timings_s": {k: round(v, 4) for k, v in res["timings_s"].items()},
        "n_items": res["n_items"],
        "loadavg_1min": res["loadavg_1min"],
        "peak_rss_mb": res["peak_rss_mb"],
        "versions": res["versions"],
        "json": str(out),
    }


def best_index(runs: list[dict[str, Any]]) -> int:
    """Position of the run with the highest valid NDCG@10 (the first one on ties)."""
    scores = [r["valid"][SELECT_ON] for r in runs]
    return scores.index(max(scores))


def median_timing(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """Median and all values of each timing key over repeated runs."""
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in runs]
        out[key] = round(statistics.median(values), 4)
        out[f"{key}_runs"] = values
    return out


def bench_family(
    fam: Family, split: Split, split_dir: Path, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """The grid on both sides, the picks on valid, repeated timings of the picks."""
    print(f"[{fam.ours}] grid of {len(fam.grid)}", flush=True)
    ours = [run_ours(fam.ours, p, split, args.threads) for p in fam.grid]
    peer: list[dict[str, Any]] = []
    for i, p in enumerate(fam.grid):
        if fam.recbole is not None:
            out = work / "recbole" / f"{fam.recbole}-{i}-r0.json"
            peer.append(
                run_peer(
                    fam.recbole, fam.to_recbole(p), split_dir, out, args.threads, args.eval_batch
                )
            )
    result: dict[str, Any] = {"recbole_model": fam.recbole, "grid": []}
    for i, p in enumerate(fam.grid):
        row = {"params": p, "ours": ours[i]}
        if peer:
            row["recbole"] = peer[i]
        result["grid"].append(row)
    pick = best_index(ours)
    timed = [ours[pick]] + [
        run_ours(fam.ours, fam.grid[pick], split, args.threads) for _ in range(args.repeats - 1)
    ]
    result["ours"] = {**ours[pick], **median_timing(timed, ("fit_s", "eval_s"))}
    result["references"] = {
        label: run_ours(fam.ours, p, split, args.threads) for label, p in fam.references.items()
    }
    result["peer_references"] = {
        label: run_peer(
            str(fam.recbole),
            {**fam.to_recbole(fam.grid[0]), **p},
            split_dir,
            work / "recbole" / f"{fam.recbole}-ref{i}.json",
            args.threads,
            args.eval_batch,
        )
        for i, (label, p) in enumerate(fam.peer_references.items())
        if args.peer_references
    }
    if peer:
        rb = best_index(peer)
        reruns = [
            run_peer(
                fam.recbole,
                fam.to_recbole(fam.grid[rb]),
                split_dir,
                work / "recbole" / f"{fam.recbole}-{rb}-r{r}.json",
                args.threads,
                args.eval_batch,
            )
            for r in range(1, args.repeats)
        ]
        keys = ("train_total_s", "test_eval_s")
        result["recbole"] = {**peer[rb], **median_timing([peer[rb], *reruns], keys)}
        ours_total = result["ours"]["fit_s"] + result["ours"]["eval_s"]
        peer_total = result["recbole"]["train_total_s"] + result["recbole"]["test_eval_s"]
        result["speedup_recbole_over_ours"] = round(peer_total / ours_total, 2)
        result["ndcg@10_ours_minus_recbole"] = round(
            result["ours"]["test"][SELECT_ON] - result["recbole"]["test"][SELECT_ON], 4
        )
    print(f"[{fam.ours}] {summary_line(result)}", flush=True)
    return result


def summary_line(res: dict[str, Any]) -> str:
    """One line: picked test NDCG@10 and times on each side."""
    o = res["ours"]
    line = (
        f"ours {o['params']} ndcg@10 {o['test'][SELECT_ON]} fit {o['fit_s']}s eval {o['eval_s']}s"
    )
    if "recbole" in res:
        r = res["recbole"]
        line += (
            f" | RecBole {r['params']} ndcg@10 {r['test'][SELECT_ON]} train {r['train_total_s']}s"
            f" eval {r['test_eval_s']}s | speed-up x{res['speedup_recbole_over_ours']}"
        )
    return line


def versions() -> dict[str, str]:
    """Versions of what our side ran on."""
    names = ("tuijian", "numpy", "scipy", "torch", "implicit", "polars", "threadpoolctl")
    return {"python": platform.python_version(), **{n: metadata.version(n) for n in names}}


def markdown(result: dict[str, Any]) -> str:
    """Grid tables (ours | RecBole per configuration) and the summary table, as Markdown."""
    lines = [f"### {result['dataset']}", ""]
    head = "| model | side | params | test NDCG@10 | Recall@10 | NDCG@20 | Recall@20 |"
    lines += [
        head + " fit / train s | eval s | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in result["families"].items():
        for side, key in (("tuijian", "ours"), ("RecBole", "recbole")):
            if key not in res:
                continue
            r = res[key]
            t = r["test"]
            fit = r.get("fit_s", r.get("train_total_s"))
            ev = r.get("eval_s", r.get("test_eval_s"))
            speed = (
                f"x{res['speedup_recbole_over_ours']}" if key == "ours" and "recbole" in res else ""
            )
            lines.append(
                f"| {name} | {side} | {fmt(r['params'])} | {t['ndcg@10']:.4f} | "
                f"{t['recall@10']:.4f} | {t['ndcg@20']:.4f} | {t['recall@20']:.4f} | "
                f"{fit:.3f} | {ev:.3f} | {speed} |"
            )
    for name, res in result["families"].items():
        lines += ["", f"#### {name}: grid (valid NDCG@10 picks; test NDCG@10 / Recall@10)", ""]
        lines += [
            "| params | ours valid | ours test | ours fit s | RecBole valid | RecBole test |"
            " RecBole train s |",
            "|---|---|---|---|---|---|---|",
        ]
        none = "- | - | -"
        for row in res["grid"]:
            peer = cells(row["recbole"], "train_total_s") if "recbole" in row else none
            lines.append(f"| {fmt(row['params'])} | {cells(row['ours'], 'fit_s')} | {peer} |")
        for label, o in res["references"].items():
            lines.append(f"| {label}: {fmt(o['params'])} | {cells(o, 'fit_s')} | {none} |")
        for label, r in res["peer_references"].items():
            lines.append(
                f"| RecBole {label}: {fmt(r['params'])} | {none} | {cells(r, 'train_total_s')} |"
            )
    return "\n".join(lines) + "\n"


def cells(run: dict[str, Any], time_key: str) -> str:
    """`valid NDCG@10 | test NDCG@10 / Recall@10 | seconds` for one run."""
    v, t = run["valid"], run["test"]
    return f"{v['ndcg@10']:.4f} | {t['ndcg@10']:.4f} / {t['recall@10']:.4f} | {run[time_key]:.3f}"


def fmt(params: dict[str, Any]) -> str:
    """`k=v, ...`, or `defaults` when empty."""
    return (
        ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        or "defaults"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every family on one dataset, write the JSON (and Markdown next to it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    parser.add_argument("--threads", type=int, default=1, help="both sides (torch, BLAS, ALS)")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs of each pick")
    parser.add_argument(
        "--models", nargs="+", choices=sorted(FAMILIES), default=["pop", "itemknn", "ease", "als"]
    )
    parser.add_argument(
        "--eval-batch",
        type=int,
        default=SCORE_BUDGET,
        help="RecBole eval_batch_size (user x item scores per batch); default = ours",
    )
    parser.add_argument(
        "--no-peer-references",
        dest="peer_references",
        action="store_false",
        help="skip RecBole's diagnostic runs (Pop with exact counts: minutes on ml-1m)",
    )
    args = parser.parse_args(argv)
    set_threads(args.threads)
    work = WORK / "classic" / args.dataset
    load_start = os.getloadavg()
    with threadpool_limits(limits=args.threads):
        split = random_split_of(args.dataset)
        split_dir = export_for_recbole(split, work)
        families = {n: bench_family(FAMILIES[n], split, split_dir, work, args) for n in args.models}
    result = {
        "dataset": args.dataset,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "split": split.protocol,
        "n_users": split.train.n_users,
        "n_items": split.train.n_items,
        "ks": list(KS),
        "select_on": f"valid {SELECT_ON}",
        "threads": args.threads,
        "repeats": args.repeats,
        "recbole_eval_batch_size": args.eval_batch,
        "cpu_count": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "versions": versions(),
        "families": families,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return result


if __name__ == "__main__":
    main()
