"""Graph filters and linear models: GF-CF, BSPM (and the other models of issue 12) on real data.

Part `gowalla`: LightGCN's published split (train.txt / test.txt), full ranking over all items
with train items excluded, Recall@20 / NDCG@20 of every test user, each run at its paper's
settings (no tuning on test). Part `ml-1m` / `ml-100k`: our random 8:1:1 split (seed 2020,
`benchmarks/common.py::random_split_of`), a small grid per model picked on valid NDCG@10, test
NDCG@10 of the pick; EASE's grid runs beside them as the baseline.

Every fit runs on one thread (torch and BLAS); fit wall and CPU seconds (this process's user +
system time, so a busy machine does not inflate it) are reported separately from evaluation.

    .venv/bin/python benchmarks/graph_filters.py --part gowalla --runs gfcf --out /tmp/tj/gf.json
    .venv/bin/python benchmarks/graph_filters.py --part gowalla --runs simplex-aggregation \
        --max-seconds 1500 --curve-every 4 --out /tmp/tj/simplex.json
    .venv/bin/python benchmarks/graph_filters.py --part ml-1m --models gfcf ease --out /tmp/m.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA, peak_rss_mb, random_split_of, set_threads
from benchmarks.two_tower import parse_sets
from tuijian.data import Split, fixed_split, load
from tuijian.evaluation import evaluate
from tuijian.models.registry import get_model
from tuijian.training import Trainer

# Gowalla runs: registry name and the paper's settings for this split.
GOWALLA_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    # Shen et al. 2021, their code: alpha 0.3, 256 singular vectors (sparsesvd, exact)
    "gfcf": ("gfcf", {"alpha": 0.3, "n_factors": 256}),
    "gfcf-randomized": ("gfcf", {"alpha": 0.3, "n_factors": 256, "svd": "randomized"}),
    "gfcf-linear": ("gfcf", {"alpha": 0.0, "n_factors": 1}),
    # Choi et al. 2023, their README for gowalla: EM, RK4 one step to T_s 2.5, beta 0.2, k 448
    "bspm-em": ("bspm", {}),
    "bspm-lm": ("bspm", {"merge": "late"}),
    # Mao et al. 2021 for this split: 64 dims, 1,000 negatives, margin 0.9, weight 150, batch
    # 512 (lr 1e-4 there; 1e-3 here, for a CPU budget); MF form and the behaviour aggregation
    "simplex": (
        "simplex",
        {"lr": 1e-3, "epochs": 60, "margin": 0.9, "negative_weight": 150.0, "batch_size": 512},
    ),
    "simplex-aggregation": (
        "simplex",
        {
            "lr": 1e-3,
            "lr_schedule": "cosine",
            "epochs": 40,
            "margin": 0.9,
            "negative_weight": 150.0,
            "batch_size": 512,
            "history_weight": 0.5,
        },
    ),
}

# ml grids: the values one tries first around the published settings.
ML_GRIDS: dict[str, tuple[dict[str, Any], ...]] = {
    "ease": tuple({"l2": float(x)} for x in (100, 250, 500, 1000, 2000)),
    "gfcf": tuple(
        {"alpha": a, "n_factors": k} for k in (32, 64, 128, 256) for a in (0.1, 0.3, 1.0)
    ),
    # the last two: L2 in proportion to item frequency^0.5, the last at RecBole's defaults
    "admmslim": (
        {"l1": 1.0, "l2": 500.0},
        {"l1": 1.0, "l2": 1000.0},
        {"l1": 5.0, "l2": 1000.0},
        {"l1": 1.0, "l2": 500.0, "alpha": 0.5},
        {"l1": 3.0, "l2": 200.0, "alpha": 0.5, "rho": 4000.0, "n_iter": 100},
    ),
    "bspm": tuple(
        {"n_factors": k, "ideal_weight": b, "sharpen_time": t}
        for k in (64, 128)
        for b in (0.2, 0.5)
        for t in (0.5, 1.0)
    ),
    # torch models: the papers' settings, early stopping on valid NDCG@10 (patience 10); RecVAE
    # also with RecBole's sampling noise (0.01), both allowed 300 epochs
    "recvae": ({"epochs": 300}, {"epochs": 300, "noise_std": 0.01}),
    "simplex": ({"lr": 1e-3}, {"lr": 5e-3}),
}
TORCH_MODELS = ("recvae", "simplex")


def gowalla_split() -> Split:
    """LightGCN's published gowalla train/test files as a fixed split."""
    raw = load("lightgcn", DATA / "lightgcn-splits" / "gowalla")
    return fixed_split(raw.fixed_split, name="gowalla")


def timed_fit(
    model: Any, split: Split, max_seconds: float = 600.0, callbacks: tuple[Any, ...] = ()
) -> dict[str, float]:
    """Fit on one thread (torch models: the Trainer, capped at `max_seconds` of wall time,
    early stopping on valid NDCG@10 when there is a valid part); wall and CPU seconds of the fit
    (the `callbacks`' time included in the wall, not in the cap)."""
    trainer = None
    if model.name in TORCH_MODELS:
        trainer = Trainer(progress=False, threads=1, max_seconds=max_seconds, callbacks=callbacks)
    with threadpool_limits(1):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        model.fit(split.train, valid=split.valid, trainer=trainer)
        return {
            "fit_wall_s": round(time.perf_counter() - wall0, 2),
            "fit_cpu_s": round(time.process_time() - cpu0, 2),
        }


def timed_eval(model: Any, split: Split, part: str, ks: tuple[int, ...]) -> dict[str, Any]:
    """Full-ranking metrics on `part` and the wall seconds they took."""
    with threadpool_limits(1):
        t0 = time.perf_counter()
        res = evaluate(
            model, split, part=part, ks=ks, metrics=("recall", "ndcg"), beyond_accuracy=False
        )
    return {
        part: {k: round(v, 5) for k, v in res.summary.items()},
        f"{part}_eval_s": round(time.perf_counter() - t0, 2),
    }


def test_curve(
    split: Split, every: int, wall_budget: float | None
) -> tuple[list[dict[str, Any]], Any]:
    """A Trainer callback that records test Recall / NDCG@20 every `every` epochs beside each
    epoch's train seconds, and stops the fit once `wall_budget` seconds (these evaluations
    included) have passed since it was made; and the list it fills."""
    curve: list[dict[str, Any]] = []
    elapsed = [0.0]
    start = time.perf_counter()

    def track(model: Any, record: Any) -> bool:
        elapsed[0] += record.train_seconds
        point = {"epoch": record.epoch, "train_s": round(record.train_seconds, 2)}
        point["train_elapsed_s"] = round(elapsed[0], 2)
        if (record.epoch + 1) % every == 0:
            point |= timed_eval(model, split, "test", (20,))
        point["wall_s"] = round(time.perf_counter() - start, 2)
        curve.append(point)
        print(json.dumps(point), flush=True)
        return wall_budget is not None and point["wall_s"] >= wall_budget

    return curve, track


def run_gowalla(
    labels: list[str],
    max_seconds: float,
    curve_every: int,
    wall_budget: float | None,
    sets: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Each labelled run at its paper settings (updated by `sets`) on the published gowalla
    split (torch models capped at `max_seconds` of training and `wall_budget` of wall time with
    their test curve, evaluated every `curve_every` epochs)."""
    split = gowalla_split()
    out = []
    for label in labels:
        name, overrides = GOWALLA_RUNS[label]
        overrides = {**overrides, **(sets or {})}
        model = get_model(name, **overrides)
        row = {"label": label, "model": name, "params": overrides}
        curve, track = test_curve(split, curve_every, wall_budget)
        callbacks = (track,) if name in TORCH_MODELS else ()
        row |= timed_fit(model, split, max_seconds, callbacks)
        row |= timed_eval(model, split, "test", (20,))
        if curve:
            row["curve"] = curve
        row["peak_rss_mb"] = round(peak_rss_mb(), 1)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def run_ml(part: str, models: list[str], max_seconds: float) -> list[dict[str, Any]]:
    """Each model's grid on `part`; the pick on valid NDCG@10 with its test metrics."""
    split = random_split_of(part)
    out = []
    for name in models:
        points = []
        for overrides in ML_GRIDS[name]:
            model = get_model(name, **overrides)
            point = {"params": overrides} | timed_fit(model, split, max_seconds)
            point |= timed_eval(model, split, "valid", (10,))
            point |= timed_eval(model, split, "test", (10, 20))
            print(json.dumps({"model": name, **point}), flush=True)
            points.append(point)
        best = max(points, key=lambda p: p["valid"]["ndcg@10"])
        hindsight = max(points, key=lambda p: p["test"]["ndcg@10"])
        row = {
            "model": name,
            "pick": best,
            "best_on_test": hindsight["test"]["ndcg@10"],
            "grid": points,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        print(json.dumps({k: row[k] for k in ("model", "pick", "best_on_test")}), flush=True)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("gowalla", "ml-1m", "ml-100k"), required=True)
    parser.add_argument("--runs", nargs="+", default=["gfcf"], choices=sorted(GOWALLA_RUNS))
    parser.add_argument("--models", nargs="+", default=["ease", "gfcf"], choices=sorted(ML_GRIDS))
    parser.add_argument("--max-seconds", type=float, default=600.0, help="torch fit cap")
    parser.add_argument(
        "--curve-every", type=int, default=2, help="gowalla torch runs: test every N epochs"
    )
    parser.add_argument(
        "--wall-budget", type=float, default=None, help="gowalla torch runs: stop after S s wall"
    )
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], help="gowalla runs: key=value"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    set_threads(1)
    if args.part == "gowalla":
        sets = parse_sets(args.sets)
        rows = run_gowalla(args.runs, args.max_seconds, args.curve_every, args.wall_budget, sets)
    else:
        rows = run_ml(args.part, args.models, args.max_seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"part": args.part, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
