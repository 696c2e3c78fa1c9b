"""Graph recommenders: LightGCN and NGCF against RecBole 1.2.1 on ml-1m; LightGCN on gowalla.

Part `ml-1m`: the ml-1m pairs (random 8:1:1 per user, seed 2020), the same settings on both
sides (64 dims, 3 layers, lr 1e-3, batch 2048, reg 1e-4 for LightGCN and 1e-5 for NGCF), one
thread each, early stopping on valid NDCG@10 (RecBole: 10 stale passes; ours: patience 10),
RecBole capped by `--recbole-cap` seconds of training. After every epoch of ours the test
NDCG@10 is measured (in a Trainer callback, not counted as training time) to report when ours
first reaches RecBole's final test NDCG@10.

Part `gowalla`: the published LightGCN split (train.txt / test.txt), full ranking over all
items with train items excluded, Recall@20 and NDCG@20 of every test user, a time budget per
run; the curve is measured every `--eval-interval` CPU seconds of training.

Each of our runs is a fresh subprocess (its own peak RSS).

    .venv/bin/python -m benchmarks.graph --part ml-1m --out /tmp/graph-ml-1m.json
    .venv/bin/python -m benchmarks.graph --part gowalla --runs lightgcn-paper \
        --max-seconds 2400 --out /tmp/graph-gowalla.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    DATA,
    WORK,
    cached_recbole,
    export_for_recbole,
    peak_rss_mb,
    random_split_of,
    recbole_sets,
    recbole_time_to_best,
    set_threads,
)
from tuijian.data import Split, fixed_split, load
from tuijian.evaluation import evaluate
from tuijian.models.neural import Precision
from tuijian.models.registry import get_model
from tuijian.nn.losses import bpr_loss, l2_penalty
from tuijian.training import Trainer

METRICS = ("ndcg", "recall")
# Our runs stop after `--max-seconds` of CPU time (train + valid, this process), so a busy
# shared machine does not shorten them; wall time is capped at this multiple of it.
WALL_FACTOR = 4.0


@dataclass(frozen=True)
class Run:
    """One of our configurations: registry name, overrides, and what it deviates in."""

    model: str
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    peer: str | None = None  # key of the RecBole run it is compared with
    max_seconds: float | None = None  # a smaller CPU budget than --max-seconds for this run
    precision: Precision = "fp32"  # the Trainer's precision for this run


# RecBole class and --set values; the harness adds epochs, the cap and 1 thread.
PEERS: dict[str, tuple[str, dict[str, Any]]] = {
    "lightgcn": (
        "LightGCN",
        {"embedding_size": 64, "n_layers": 3, "learning_rate": 1e-3, "reg_weight": 1e-4},
    ),
    "ngcf": (
        "NGCF",
        {
            "embedding_size": 64,
            "hidden_size_list": "[64,64,64]",
            "learning_rate": 1e-3,
            "reg_weight": 1e-5,
            "node_dropout": 0.0,
            "message_dropout": 0.1,
        },
    ),
}

# The papers' optimisation (our defaults train with larger batches: docs/benchmarks/defaults.md).
PAPER: dict[str, Any] = {"batch_size": 2048, "lr": 1e-3}

ML1M_RUNS: dict[str, Run] = {
    "lightgcn": Run("lightgcn", PAPER, "paper settings, same as RecBole", "lightgcn"),
    "lightgcn-full": Run(
        "lightgcn",
        {**PAPER, "propagation": "full"},
        "whole graph propagated per batch (speed only)",
        "lightgcn",
        max_seconds=150.0,
    ),
    "lightgcn-b8192": Run(
        "lightgcn",
        {"batch_size": 8192, "lr": 4e-3},
        "DEVIATION: batch 8192, lr 4e-3 (scaled with the batch)",
        "lightgcn",
    ),
    "ngcf": Run("ngcf", PAPER, "paper settings, same as RecBole", "ngcf"),
}

GOWALLA_RUNS: dict[str, Run] = {
    "lightgcn-paper": Run("lightgcn", PAPER, "paper settings: batch 2048, lr 1e-3, reg 1e-4"),
    "lightgcn-b65536": Run(
        "lightgcn",
        {"batch_size": 65536, "lr": 5e-2},
        "DEVIATION: batch 65536, lr 5e-2",
    ),
    "lightgcn-b65536-step": Run(
        "lightgcn",
        {
            "batch_size": 65536,
            "lr": 5e-2,
            "lr_schedule": "step",
            "lr_step_epochs": 75,
            "lr_gamma": 0.5,
        },
        "DEVIATION: batch 65536, lr 5e-2 halved every 75 epochs",
    ),
    "lightgcn-b65536-cosine": Run(
        "lightgcn",
        {"batch_size": 65536, "lr": 5e-2, "lr_schedule": "cosine", "epochs": 250},
        "DEVIATION: batch 65536, lr 5e-2 cosine-decayed to 0 over 250 epochs",
    ),
    "lightgcn-users-b8192-cosine": Run(
        "lightgcn",
        {
            "sampling": "users",
            "batch_size": 8192,
            "lr": 4e-3,
            "lr_schedule": "cosine",
            "epochs": 200,
        },
        "the authors' user-uniform sampler; DEVIATION: batch 8192, lr 4e-3 cosine-decayed to 0 "
        "over 200 epochs",
    ),
    "lightgcn-users-b8192-cosine250": Run(
        "lightgcn",
        {
            "sampling": "users",
            "batch_size": 8192,
            "lr": 4e-3,
            "lr_schedule": "cosine",
            "epochs": 250,
        },
        "the authors' user-uniform sampler; DEVIATION: batch 8192, lr 4e-3 cosine-decayed to 0 "
        "over 250 epochs",
    ),
    "bpr": Run("bpr", note="BPR-MF, 64 dims, batch 2048, lr 1e-3"),
    "multvae": Run("multvae", note="Mult-VAE, its defaults"),
    "multvae-bf16": Run(
        "multvae",
        note="Mult-VAE, its defaults, bfloat16 matrix products",
        precision="bf16",
    ),
}


def gowalla_split() -> Split:
    """LightGCN's published gowalla train/test files as a fixed split."""
    raw = load("lightgcn", DATA / "lightgcn-splits" / "gowalla")
    return fixed_split(raw.fixed_split, name="gowalla")


def load_split(part: str) -> Split:
    """The split of a benchmark part: the ml-1m pairs or the gowalla files."""
    return random_split_of("ml-1m") if part == "ml-1m" else gowalla_split()


# ---- one of our runs (in its own process) -------------------------------------------------


def run_one(
    part: str, label: str, max_seconds: float, eval_interval: float, threads: int
) -> dict[str, Any]:
    """Fit one configuration with a test curve; returns its result dictionary."""
    set_threads(threads)
    run = (ML1M_RUNS if part == "ml-1m" else GOWALLA_RUNS)[label]
    max_seconds = min(max_seconds, run.max_seconds or max_seconds)
    split = load_split(part)
    ks = (10, 20)
    curve: list[dict[str, Any]] = []
    eval_times: list[float] = []
    totals = {"train": 0.0, "valid": 0.0, "last_eval_cpu": 0.0, "test_cpu": 0.0}
    cpu_start = time.process_time()

    def track(model: Any, record: Any) -> bool:
        """Log the epoch, test when due, and stop once the CPU budget is spent."""
        totals["train"] += record.train_seconds
        totals["valid"] += record.valid_seconds
        cpu = time.process_time() - cpu_start - totals["test_cpu"]  # train + valid CPU
        point = {
            "epoch": record.epoch,
            "loss": round(record.loss, 5),
            "train_s": round(record.train_seconds, 3),
            "cum_train_s": round(totals["train"], 2),
            "cum_valid_s": round(totals["valid"], 2),
            "cum_cpu_s": round(cpu, 2),
        }
        if record.valid:
            point["valid"] = record.valid
        out_of_budget = cpu >= max_seconds
        if cpu - totals["last_eval_cpu"] >= eval_interval or out_of_budget:
            totals["last_eval_cpu"] = cpu
            model.invalidate_cache()  # each timed pass propagates once
            t0, c0 = time.perf_counter(), time.process_time()
            res = evaluate(model, split, ks=ks, metrics=METRICS, beyond_accuracy=False)
            eval_times.append(time.perf_counter() - t0)
            totals["test_cpu"] += time.process_time() - c0
            point["test"] = {k: round(v, 5) for k, v in res.summary.items()}
        curve.append(point)
        print(json.dumps(point), flush=True)
        return out_of_budget

    wall_cap = max_seconds * WALL_FACTOR
    model = get_model(run.model, **{"epochs": 100_000, **run.overrides})
    trainer = Trainer(
        progress=False,
        callbacks=[track],
        threads=threads,
        max_seconds=wall_cap,
        precision=run.precision,
    )
    t0 = time.perf_counter()
    model.fit(split.train, valid=split.valid, trainer=trainer)
    fit_s = time.perf_counter() - t0
    final = evaluate(model, split, ks=ks, metrics=METRICS, beyond_accuracy=False)
    history = trainer.history
    return {
        "label": label,
        "model": run.model,
        "note": run.note,
        "params": run.overrides,
        "config": model.config.model_dump(),
        "precision": run.precision,
        "test": {k: round(v, 5) for k, v in final.summary.items()},
        "epochs_run": len(history.epochs),
        "best_epoch": history.best_epoch,
        "stopped_by": history.stopped_by,
        "fit_s": round(fit_s, 2),
        "train_total_s": round(history.train_seconds, 2),
        "median_train_s_per_epoch": round(
            statistics.median(e.train_seconds for e in history.epochs), 3
        ),
        "median_valid_s_per_pass": round(
            statistics.median([e.valid_seconds for e in history.epochs] or [0.0]), 3
        ),
        "median_eval_s_per_pass": round(statistics.median(eval_times or [0.0]), 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "curve": curve,
    }


def spawn(part: str, label: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; its result plus CPU use of the process."""
    cmd = [
        sys.executable, "-m", "benchmarks.graph", "--part", part, "--one", label,
        "--max-seconds", str(args.max_seconds), "--eval-interval", str(args.eval_interval),
        "--threads", str(args.threads), "--out", str(out),
    ]  # fmt: skip
    with Usage() as usage:
        subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parents[1])
    return {**json.loads(out.read_text()), **usage.summary()}


class Usage:
    """CPU seconds and wall seconds of the child processes run inside the block."""

    def __enter__(self) -> Usage:
        self.cpu0 = children_cpu()
        self.wall0 = time.perf_counter()
        self.load0 = os.getloadavg()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = children_cpu() - self.cpu0
        self.wall = time.perf_counter() - self.wall0

    def summary(self) -> dict[str, float]:
        """CPU and wall seconds, their ratio, and the load when the block started."""
        return {
            "process_cpu_s": round(self.cpu, 1),
            "process_wall_s": round(self.wall, 1),
            "cpu_share": round(self.cpu / max(self.wall, 1e-9), 3),
            "loadavg_1min_at_start": round(self.load0, 2),
        }


def children_cpu() -> float:
    """User + system CPU seconds of all finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---- speed of the propagation variants -----------------------------------------------------


def coo_autograd_loss(model: Any, batch: tuple[Any, ...]) -> Any:
    """LightGCN's batch loss the textbook way: every layer over the whole graph, COO autograd."""
    users, pos, neg = batch[:3]
    module = model.module_
    if not hasattr(module, "coo"):
        coo = module.graph.matrix.tocoo()
        index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        module.coo = torch.sparse_coo_tensor(index, torch.from_numpy(coo.data), coo.shape)
        module.coo = module.coo.coalesce()
    layers = [module.ego]
    for _ in range(model.config.n_layers):
        layers.append(torch.sparse.mm(module.coo, layers[-1]))
    final = torch.stack(layers).mean(0)
    n_users = len(model.users_)
    u, p, n = final[users], final[n_users + pos], final[n_users + neg]
    ego = module.ego
    reg = l2_penalty(ego[users], ego[n_users + pos], ego[n_users + neg]) / len(users)
    return bpr_loss((u * p).sum(-1), (u * n).sum(-1)) + model.config.reg_weight * reg


def speed(part: str, n_batches: int, threads: int) -> dict[str, Any]:
    """CPU seconds per LightGCN training batch (forward, backward, Adam) for each variant."""
    set_threads(threads)
    train = load_split(part).train
    out: dict[str, Any] = {}
    for batch_size in (2048, 8192, 65536):
        for variant in ("restricted", "full", "coo-autograd"):
            propagation = "full" if variant == "coo-autograd" else variant
            model = get_model("lightgcn", batch_size=batch_size, propagation=propagation)
            model.users_, model.items_ = train.users, train.items
            model.seen_ = (train.matrix > 0).astype(np.float32).tocsr()
            model.prepare_data(train)
            model.module_ = model.build_module()
            optimizer = torch.optim.Adam(model.module_.parameters(), lr=1e-3)
            batches = model.batches(train, np.random.default_rng(0))
            limit = 3 if variant == "coo-autograd" else n_batches
            t0, done = 0.0, 0
            for step, batch in zip(range(limit + 1), batches, strict=False):
                if step == 1:
                    t0 = time.process_time()  # the first batch warms up
                optimizer.zero_grad()
                loss = (
                    coo_autograd_loss(model, batch)
                    if variant == "coo-autograd"
                    else model.compute_loss(batch)
                )
                loss.backward()
                optimizer.step()
                done = step
            per_batch = (time.process_time() - t0) / max(done, 1)
            per_epoch = per_batch * -(-model.seen_.nnz // batch_size)
            key = f"batch {batch_size} {variant}"
            out[key] = {
                "cpu_s_per_batch": round(per_batch, 4),
                "cpu_s_per_epoch": round(per_epoch, 1),
            }
            print(key, out[key], flush=True)
    return out


# ---- RecBole and the comparison ------------------------------------------------------------


def run_peer(key: str, split: Split, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """RecBole's model on our exact split (reused from a finished run with the same argv)."""
    name, settings = PEERS[key]
    sets = {**settings, "train_batch_size": 2048, "eval_batch_size": args.recbole_eval_batch}
    argv = ["--epochs", "300", "--cap-seconds", str(args.recbole_cap), *recbole_sets(sets)]
    out = work / "recbole" / f"{name}-cap{args.recbole_cap}.json"
    reuse = not args.rerun_recbole
    split_dir = export_for_recbole(split, work)
    with Usage() as usage:
        res = cached_recbole(name, split_dir, out, argv, threads=args.threads, reuse=reuse)
    if "usage" not in res:  # a fresh run: record its CPU use next to its result
        res["usage"] = usage.summary()
        out.write_text(json.dumps(res, indent=2))
    return res


def peer_summary(res: dict[str, Any]) -> dict[str, Any]:
    """The RecBole figures we report, and its time to its best (reported) epoch."""
    best = res["best_epoch"]
    to_best = recbole_time_to_best(res)
    return {
        "test": res["test_result"],
        "epochs_run": res["epochs_run"],
        "best_epoch": best,
        "stopped_by": res["stopped_by"],
        "train_total_s": res["train_total_s"],
        "median_train_s_per_epoch": res["median_train_s_per_epoch"],
        "median_eval_s_per_pass": res["median_eval_s_per_pass"],
        "eval_batch_size": res["config"].get("eval_batch_size"),
        "seconds_to_best_epoch": round(to_best, 1),
        "peak_rss_mb": res["peak_rss_mb"],
        "loadavg_1min": res.get("loadavg_1min"),
        **res.get("usage", {}),
    }


def time_to_target(ours: dict[str, Any], target: float) -> dict[str, Any] | None:
    """First epoch of ours whose test NDCG@10 reaches `target`: its cumulative seconds."""
    for point in ours["curve"]:
        if "test" in point and point["test"]["ndcg@10"] >= target:
            return {
                "epoch": point["epoch"],
                "train_s": point["cum_train_s"],
                "train_plus_valid_s": round(point["cum_train_s"] + point["cum_valid_s"], 2),
                "cpu_s": point["cum_cpu_s"],
            }
    return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the chosen part and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("ml-1m", "gowalla"), required=True)
    parser.add_argument("--runs", default="", help="comma-separated run labels (default: all)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="CPU s per run of ours")
    parser.add_argument("--eval-interval", type=float, default=0.0, help="CPU s between tests")
    parser.add_argument("--recbole-cap", type=int, default=600)
    parser.add_argument("--recbole-eval-batch", type=int, default=409_600)
    parser.add_argument("--rerun-recbole", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--speed", dest="part_speed", action="store_true", help="variants only")
    parser.add_argument("--speed-batches", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.part_speed:
        result = {"part": args.part, "speed": speed(args.part, args.speed_batches, args.threads)}
        args.out.write_text(json.dumps(result, indent=2))
        return result
    if args.one:
        result = run_one(args.part, args.one, args.max_seconds, args.eval_interval, args.threads)
        args.out.write_text(json.dumps(result, indent=2))
        return result
    table = ML1M_RUNS if args.part == "ml-1m" else GOWALLA_RUNS
    labels = [s for s in args.runs.split(",") if s] or list(table)
    work = WORK / "graph" / args.part
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"part": args.part, "threads": args.threads, "runs": {}, "peers": {}}
    split = load_split(args.part) if args.part == "ml-1m" else None
    for label in labels:
        run = table[label]
        if run.peer and split is not None and run.peer not in result["peers"]:
            result["peers"][run.peer] = peer_summary(run_peer(run.peer, split, work, args))
        ours = spawn(args.part, label, args, work / f"ours-{label}.json")
        if run.peer in result["peers"]:
            target = result["peers"][run.peer]["test"]["ndcg@10"]
            ours["time_to_peer_ndcg@10"] = time_to_target(ours, target)
        result["runs"][label] = ours
        args.out.write_text(json.dumps(result, indent=2))
        print(f"[{label}] test {ours['test']} epochs {ours['epochs_run']}", flush=True)
    return result


if __name__ == "__main__":
    main()
