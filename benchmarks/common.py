"""Shared benchmark plumbing: the exact splits we and RecBole both use, and running RecBole.

Every benchmark builds its split here, writes it as CSV, converts it with
`../shared/bench/recbole/export_split.py`, and runs RecBole with `run.py` on exactly those rows.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from tuijian.data import Split, load, prepare, random_split

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TUIJIAN_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
BENCH = SHARED / "bench" / "recbole"
RECBOLE_PY = Path(os.environ.get("RECBOLE_VENV", "/tmp/recbole-venv")) / "bin" / "python"
WORK = Path(os.environ.get("TUIJIAN_BENCH_DIR", "/tmp/tuijian-bench"))
SEED = 2020

DATASETS = {
    "ml-100k": ("movielens", DATA / "ml-100k"),
    "ml-1m": ("movielens", DATA / "ml-1m"),
}


def set_threads(n: int) -> None:
    """Same thread count for torch and BLAS on both sides of a comparison."""
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)


def random_split_of(name: str, seed: int = SEED) -> Split:
    """Ratings as implicit interactions (no filtering), random 8:1:1 per user, seeded."""
    fmt, path = DATASETS[name]
    raw = load(fmt, path)
    frame, _ = prepare(raw.interactions)
    return random_split(frame, (0.8, 0.1, 0.1), seed=seed)


def export_for_recbole(split: Split, out: Path) -> Path:
    """Write the split's parts as CSV and convert them to RecBole atomic files in `out/split`."""
    out.mkdir(parents=True, exist_ok=True)
    csv_dir = out / "csv"
    csv_dir.mkdir(exist_ok=True)
    for part, ds in split.parts().items():
        ds.external().select("user_id", "item_id").write_csv(csv_dir / f"{part}.csv")
    split_dir = out / "split"
    if not (split_dir / "test.inter").is_file():
        subprocess.run(
            [
                sys.executable,
                str(BENCH / "export_split.py"),
                "--train", str(csv_dir / "train.csv"),
                "--valid", str(csv_dir / "valid.csv"),
                "--test", str(csv_dir / "test.csv"),
                "--out-dir", str(split_dir),
            ],
            check=True,
        )  # fmt: skip
    return split_dir


def run_recbole(
    model: str, split_dir: Path, out_json: Path, *, threads: int = 1, args: list[str] = ()
) -> dict[str, Any]:
    """Run RecBole's `model` on our split (its venv, see ../shared/bench/README.md)."""
    if not RECBOLE_PY.is_file():
        raise SystemExit(f"RecBole venv missing: run `bash {BENCH}/setup.sh` first")
    cmd = [
        str(RECBOLE_PY), str(BENCH / "run.py"), "--model", model,
        "--train", str(split_dir / "train.inter"),
        "--valid", str(split_dir / "valid.inter"),
        "--test", str(split_dir / "test.inter"),
        "--threads", str(threads), "--out", str(out_json), *args,
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=SHARED)
    return json.loads(out_json.read_text())


def recbole_sets(settings: dict[str, Any]) -> list[str]:
    """run.py's `--set key=value` arguments, one pair per setting."""
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]


def cached_recbole(
    model: str, split_dir: Path, out_json: Path, argv: list[str], *, threads: int, reuse: bool
) -> dict[str, Any]:
    """`run_recbole`, or with `reuse` the result an earlier run with exactly `argv` left."""
    if reuse and out_json.is_file():
        earlier = json.loads(out_json.read_text())
        if earlier.get("argv", [])[-len(argv) :] == argv:
            return earlier
    out_json.parent.mkdir(parents=True, exist_ok=True)
    return run_recbole(model, split_dir, out_json, threads=threads, args=argv)


def recbole_time_to_best(res: dict[str, Any]) -> float:
    """RecBole's model init + train + valid seconds up to and including its best epoch."""
    upto = res["best_epoch"] + 1
    spent = sum(res["train_epoch_s"][:upto]) + sum(res["valid_eval_s"][:upto])
    return res["timings_s"]["model_init"] + spent


def summarize_recbole(res: dict[str, Any]) -> dict[str, Any]:
    """The fields of a RecBole result that the report needs."""
    keys = (
        "lr", "epochs_run", "best_epoch", "stopped_by", "best_valid_score", "test_result",
        "median_train_s_per_epoch", "median_eval_s_per_pass", "train_total_s", "peak_rss_mb",
        "timings_s", "valid_scores", "loadavg_1min",
    )  # fmt: skip
    out = {k: res.get(k) for k in keys}
    out["eval_batch_size"] = res.get("config", {}).get("eval_batch_size")
    out["time_to_best_epoch_s"] = recbole_time_to_best(res)
    return out


def time_to_reach(ours: dict[str, Any], target: float) -> dict[str, Any] | None:
    """First epoch whose test NDCG@10 >= target, with cumulative train and train+valid time."""
    for epoch, point in enumerate(ours["test_curve"]):
        if point["ndcg@10"] >= target:
            train = sum(ours["train_epoch_s"][: epoch + 1])
            valid = sum(ours["valid_eval_s"][: epoch + 1])
            return {"epoch": epoch, "train_s": train, "train_plus_valid_s": train + valid}
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    """`with Timer() as t: ...; t.seconds`."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
