"""Autoencoders (Mult-VAE, Mult-DAE, CDAE, RecVAE) vs RecBole on ml-1m, I-AutoRec on ml-100k.

Part `ml1m`: the ml-1m pairs, random 8:1:1 per user (`random_split_of("ml-1m")`). Both sides use
the same network sizes (Mult-*: [600] -> 200 latent, dropout 0.5; CDAE: 64 hidden, corruption
0.5, BCE over the whole row), the same batch of `--batch-size` users, Adam, the same lr grid,
one thread, early stopping on valid NDCG@10 (11 passes without improvement) and full ranking.
Each side picks its lr on valid NDCG@10 and reports test at that checkpoint. Our test NDCG@10 is
also measured after every epoch by a Trainer callback (untimed) to find when we first reach
RecBole's final test NDCG@10. RecBole is capped by `--recbole-cap` seconds and `--epochs` (ours
by `--ours-cap` seconds of training when given); it
runs with `--recbole-eval-batch` (scores per eval batch), and one short extra run per model
measures its validation pass at its default eval batch (4096 scores: one ml-1m user per batch).
Each of our fits runs in a fresh process, so its peak RSS is its own. Our variants: each of
`--precisions` (fp32; bf16 = bfloat16 matrix products), and for Mult-VAE and RecVAE each
`--noise-std` (0.01 is what RecBole's MultiVAE and RecVAE sample; 1.0 is the papers').
`--reuse-recbole` reads RecBole results already written by an earlier run with the same
settings instead of rerunning them.
Part `seeds` (not in `all`) refits both sides at each `--lrs` x `--seeds` to show the spread.

Part `ml100k`: u.data with its ratings (no threshold), random 90/10 per user. A 90/10 split of
the train part picks each model's grid point by RMSE; the winner is refitted on all of train and
scored on test, beside the global mean and the damped bias baseline mu + b_u + b_i.

    .venv/bin/python -m benchmarks.autoencoders --out /tmp/autoencoders.json
    .venv/bin/python -m benchmarks.autoencoders --part ml100k --out /tmp/autorec.json
    .venv/bin/python -m benchmarks.autoencoders --part seeds --models multvae --lrs 3e-3 \
        --precisions bf16 --out /tmp/autoencoders-seeds.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    DATASETS,
    SEED,
    WORK,
    Timer,
    cached_recbole,
    export_for_recbole,
    peak_rss_mb,
    random_split_of,
    recbole_sets,
    recbole_time_to_best,
    set_threads,
)
from tuijian.data import Columns, Split, load, prepare, random_split
from tuijian.evaluation.evaluate import evaluate, evaluate_ratings
from tuijian.models.base import Recommender
from tuijian.models.classic.biased_mf import damped_biases
from tuijian.models.neural import TorchRecommender
from tuijian.models.registry import get_model
from tuijian.training import EpochRecord, Trainer

METRICS = ("ndcg", "recall")
PATIENCE = 11  # RecBole's stopping_step 10: it stops at the 11th pass without improvement
PEERS = {"multvae": "MultiVAE", "multdae": "MultiDAE", "cdae": "CDAE", "recvae": "RecVAE"}


def network(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same network on both sides: our config overrides and RecBole's settings."""
    if name == "recvae":
        # both defaults are the paper's: 600 hidden, 200 latent, dropout 0.5, gamma 0.005,
        # prior weights (0.15, 0.75, 0.1), 3 encoder passes per decoder pass in an epoch
        return {}, {}
    if name == "cdae":
        ours = {"embedding_size": 64, "corruption": 0.5, "activation": "relu", "loss": "bce"}
        return ours, {"embedding_size": 64, "corruption_ratio": 0.5, "hid_activation": "relu"}
    ours = {"hidden_sizes": (600,), "latent_size": 200, "dropout": 0.5}
    # RecBole's MultiVAE splits its `latent_dimension` outputs into mu and logvar: 400 -> z 200
    latent = 400 if name == "multvae" else 200
    return ours, {"mlp_hidden_size": "[600]", "latent_dimension": latent, "dropout_prob": 0.5}


# ---- ml-1m: ours ---------------------------------------------------------------------------
def _fit_ours(
    name: str, lr: float, variant: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """One of our fits (run in a fresh process): per-epoch timings and test curve, final test."""
    set_threads(args.threads)
    split = random_split_of("ml-1m")
    curve: list[dict[str, float]] = []

    def track(model: TorchRecommender, record: EpochRecord) -> None:
        res = evaluate(model, split, ks=(10,), metrics=METRICS, beyond_accuracy=False)
        curve.append({"epoch": record.epoch, **{f"test_{k}": v for k, v in res.summary.items()}})
        print(f"{name} {variant} lr={lr} epoch {record.epoch}: {record.train_seconds:.2f} s train, "
              f"valid {record.valid}, test {res.summary}", flush=True)  # fmt: skip

    ours, _ = network(name)
    settings = {"batch_size": args.batch_size, "lr": lr, "epochs": args.epochs, "seed": SEED}
    settings |= {"patience": PATIENCE}
    run = {"threads": args.threads, "precision": variant.get("precision", "fp32")}  # the run's
    run |= {"max_seconds": args.ours_cap}
    model = get_model(name, **ours, **{**settings, **without_run(variant)})
    trainer = Trainer(progress=False, callbacks=[track], **run)
    with Timer() as fit:
        model.fit(split.train, valid=split.valid, trainer=trainer)
    epochs = trainer.history.epochs
    elapsed = np.cumsum([e.train_seconds + e.valid_seconds for e in epochs])
    for point, record, spent in zip(curve, epochs, elapsed, strict=True):
        point.update(
            train_s=record.train_seconds,
            valid_s=record.valid_seconds,
            elapsed_s=float(spent),
            valid_ndcg_10=(record.valid or {}).get("ndcg@10"),
        )
    passes = []
    for _ in range(3):
        with Timer() as t:
            evaluate(model, split, part="valid", ks=(10,), metrics=("ndcg",), beyond_accuracy=False)
        passes.append(t.seconds)
    test = evaluate(model, split, ks=(10, 20), metrics=METRICS, beyond_accuracy=False).summary
    return {
        "lr": lr,
        "variant": variant,
        "config": model.config.model_dump(mode="json"),
        "epochs_run": len(epochs),
        "best_epoch": trainer.history.best_epoch,
        "best_valid_ndcg_10": trainer.history.best_score,
        "stopped_by": trainer.history.stopped_by,
        "median_train_s_per_epoch": float(np.median([e.train_seconds for e in epochs])),
        "median_eval_s_per_pass": float(np.median([e.valid_seconds for e in epochs])),
        "eval_s_per_pass_after_fit": float(np.median(passes)),
        "train_total_s": float(sum(e.train_seconds for e in epochs)),
        "fit_wall_s": fit.seconds,
        "test": test,
        "curve": curve,
        "peak_rss_mb": own_peak_rss_mb(),
    }


def in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a fresh interpreter: this process stays small, so the peak RSS that a
    child reports (Linux carries the parent's high-water mark across fork + exec) is its own."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def fit_ours(
    name: str, lr: float, variant: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """`_fit_ours` in a fresh process, so peak RSS and thread settings are its own."""
    return in_child(_fit_ours, name, lr, variant, args)


def own_peak_rss_mb() -> float:
    """Peak RSS of this process image (VmHWM), not inherited from the parent as ru_maxrss is."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


def _export_ml1m() -> Path:
    return export_for_recbole(random_split_of("ml-1m"), WORK / "ml-1m-random")


# ---- ml-1m: RecBole ------------------------------------------------------------------------
def fit_peer(
    name: str,
    lr: float,
    split_dir: Path,
    args: argparse.Namespace,
    *,
    eval_batch: int,
    seed: int = SEED,
) -> dict[str, Any]:
    """RecBole's model with the same network, batch and lr (capped)."""
    _, sets = network(name)
    sets |= {
        "learning_rate": lr,
        "train_batch_size": args.batch_size,
        "eval_batch_size": eval_batch,
    }
    tag = "" if seed == SEED else f"-seed{seed}"
    out = WORK / "autoencoders" / f"{PEERS[name]}-lr{lr}-eval{eval_batch}{tag}.json"
    extra = ["--epochs", str(args.epochs), "--cap-seconds", str(args.recbole_cap)]
    if seed != SEED:
        extra += ["--seed", str(seed)]
    argv = extra + recbole_sets(sets)
    res = cached_recbole(
        PEERS[name], split_dir, out, argv, threads=args.threads, reuse=args.reuse_recbole
    )
    return {
        "lr": lr,
        "eval_batch_size": eval_batch,
        "epochs_run": res["epochs_run"],
        "best_epoch": res["best_epoch"],
        "stopped_by": res["stopped_by"],
        "best_valid_ndcg_10": res["best_valid_score"],
        "median_train_s_per_epoch": res["median_train_s_per_epoch"],
        "median_eval_s_per_pass": res["median_eval_s_per_pass"],
        "train_total_s": res["train_total_s"],
        "fit_s": res["timings_s"]["fit"],
        "time_to_best_s": recbole_time_to_best(res),
        "test": res["test_result"],
        "peak_rss_mb": res["peak_rss_mb"],
        "loadavg_1min": res.get("loadavg_1min"),
    }


def peer_default_eval(name: str, split_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """RecBole's validation pass at its default eval batch (4096 scores), from a 2-epoch run."""
    short = argparse.Namespace(**{**vars(args), "epochs": 2})
    res = fit_peer(name, args.lrs[0], split_dir, short, eval_batch=4096)
    return {"eval_batch_size": 4096, "median_eval_s_per_pass": res["median_eval_s_per_pass"]}


def time_to_reach(curve: list[dict[str, float]], target: float) -> dict[str, Any] | None:
    """The first epoch whose test NDCG@10 reaches `target`, with the time spent until then."""
    for point in curve:
        if point["test_ndcg@10"] >= target:
            return {"epoch": point["epoch"], "elapsed_s": point["elapsed_s"]}
    return None


def without_run(variant: dict[str, Any]) -> dict[str, Any]:
    """A variant's model parameters: its precision is a setting of the run (the Trainer's)."""
    return {k: v for k, v in variant.items() if k != "precision"}


def variants(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Our settings besides the lr: each precision; for Mult-VAE and RecVAE the first noise
    scale with each precision and the other noise scales with the first precision."""
    if name not in ("multvae", "recvae"):
        return [{"precision": p} for p in args.precisions]
    first, *others = args.noise_std
    return [{"precision": p, "noise_std": first} for p in args.precisions] + [
        {"precision": args.precisions[0], "noise_std": n} for n in others
    ]


def ml1m(args: argparse.Namespace) -> dict[str, Any]:
    """Every model in `--models`: both sides over the lr grid, the winners, time to target."""
    split_dir = in_child(_export_ml1m)
    out: dict[str, Any] = {}
    for name in args.models:
        peer = [fit_peer(name, lr, split_dir, args, eval_batch=args.recbole_eval_batch)
                for lr in args.lrs]  # fmt: skip
        best_peer = max(peer, key=lambda r: r["best_valid_ndcg_10"])
        target = best_peer["test"]["ndcg@10"]
        summary: dict[str, Any] = {
            "recbole": peer,
            "recbole_default_eval": peer_default_eval(name, split_dir, args),
            "recbole_lr": best_peer["lr"],
            "target_test_ndcg_10": target,
            "ours": [],
        }
        for variant in variants(name, args):
            runs = [fit_ours(name, lr, variant, args) for lr in args.lrs]
            best = max(runs, key=lambda r: r["best_valid_ndcg_10"])
            reach = time_to_reach(best["curve"], target)
            summary["ours"].append(
                {
                    "variant": variant,
                    "runs": runs,
                    "lr": best["lr"],
                    "test": best["test"],
                    "reaches_target": reach,
                    "speedup_vs_recbole_to_best": reach
                    and best_peer["time_to_best_s"] / reach["elapsed_s"],
                    "speedup_vs_recbole_fit": reach and best_peer["fit_s"] / reach["elapsed_s"],
                }
            )
            brief = {k: v for k, v in summary["ours"][-1].items() if k != "runs"}
            print(json.dumps({"model": name, "target": target, **brief}), flush=True)
        out[name] = summary
    return out


def seeds(args: argparse.Namespace) -> dict[str, Any]:
    """Seed spread: both sides at each lr and each of `--seeds` (our first variant only)."""
    split_dir = in_child(_export_ml1m)
    out: dict[str, Any] = {}
    for name, lr, seed in itertools.product(args.models, args.lrs, args.seeds):
        peer = fit_peer(name, lr, split_dir, args, eval_batch=args.recbole_eval_batch, seed=seed)
        ours = fit_ours(name, lr, {**variants(name, args)[0], "seed": seed}, args)
        row = {
            "recbole": {k: peer[k] for k in ("best_valid_ndcg_10", "best_epoch", "test")},
            "ours": {k: ours[k] for k in ("best_valid_ndcg_10", "best_epoch", "test")},
        }
        out[f"{name} lr={lr} seed={seed}"] = row
        print(json.dumps({"run": f"{name} lr={lr} seed={seed}", **row}), flush=True)
    return out


# ---- ml-100k ratings -----------------------------------------------------------------------
def _rmse(pred: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - actual) ** 2)))


def rating_grid(
    name: str, grid: list[dict[str, Any]], tune: Split, split: Split, threads: int
) -> dict[str, Any]:
    """Pick the grid point with the lowest RMSE on `tune`, refit it on `split.train`, test it."""
    tried = []
    for params in grid:
        trainer = Trainer(progress=False, threads=threads)
        model = get_model(name, seed=SEED, **params).fit(tune.train, trainer=trainer)
        tried.append({**params, "tune_rmse": evaluate_ratings(model, tune)["rmse"]})
    best = min(tried, key=lambda r: r["tune_rmse"])
    params = {k: v for k, v in best.items() if k != "tune_rmse"}
    with Timer() as fit:
        model: Recommender = get_model(name, seed=SEED, **params)
        model.fit(split.train, trainer=Trainer(progress=False, threads=threads))
    result = evaluate_ratings(model, split).summary
    return {"grid": tried, "chosen": params, "fit_s": fit.seconds, "test": result}


def ml100k(args: argparse.Namespace) -> dict[str, Any]:
    """Global mean, damped biases, biased MF and I-AutoRec: test RMSE on a 90/10 ratings split."""
    return in_child(_ml100k, args)


def _ml100k(args: argparse.Namespace) -> dict[str, Any]:
    set_threads(args.threads)
    fmt, path = DATASETS["ml-100k"]
    frame, _ = prepare(load(fmt, path).interactions)
    split = random_split(frame, (0.9, 0.1), seed=SEED)
    tune = random_split(split.train, (0.9, 0.1), seed=SEED)
    test = split.test.interactions
    users, items = test[Columns.user_idx].to_numpy(), test[Columns.item_idx].to_numpy()
    actual = test[Columns.rating].to_numpy()
    mu, user_bias, item_bias = damped_biases(split.train.rating_matrix, 5.0)
    autorec_grid = [
        {"l2": l2, "epochs": epochs} for l2 in (100.0, 300.0, 1000.0) for epochs in (50, 100)
    ]
    mf_grid = [{"l2": l2, "epochs": epochs} for l2 in (0.1, 0.2, 0.4) for epochs in (10, 30)]
    return {
        "split": split.protocol,
        "global_mean": {"test": {"rmse": _rmse(np.full(len(actual), mu), actual)}},
        "damped_biases": {
            "test": {"rmse": _rmse(np.clip(mu + user_bias[users] + item_bias[items], 1, 5), actual)}
        },
        "biasedmf": rating_grid("biasedmf", mf_grid, tune, split, args.threads),
        "autorec": rating_grid("autorec", autorec_grid, tune, split, args.threads),
        "peak_rss_mb": own_peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--part", choices=["all", "ml1m", "ml100k", "seeds"], default="all")
    parser.add_argument("--seeds", nargs="+", type=int, default=[2021, 2022])
    parser.add_argument("--models", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 3e-3])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--recbole-cap", type=float, default=600.0)
    parser.add_argument("--ours-cap", type=float, default=None, help="our train seconds cap")
    parser.add_argument("--recbole-eval-batch", type=int, default=409_600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--noise-std", nargs="+", type=float, default=[0.01, 1.0])
    parser.add_argument("--reuse-recbole", action="store_true", help="reuse RecBole result files")
    args = parser.parse_args()
    set_threads(args.threads)
    started = time.time()
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.part in ("all", "ml100k"):
        result["ml100k"] = ml100k(args)
        print(
            json.dumps(
                {k: v.get("test") for k, v in result["ml100k"].items() if isinstance(v, dict)}
            )
        )
    if args.part in ("all", "ml1m"):
        result["ml1m"] = ml1m(args)
    if args.part == "seeds":
        result["seeds"] = seeds(args)
    result["wall_s"] = time.time() - started
    args.out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
