"""`--device`, `--threads`, `--max-seconds`, `--precision`: run settings of train and compare."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import fails, ok, run
from tuijian.models.base import Recommender

BPR = ("--set", "embedding_size=4", "--set", "epochs=50", "--set", "patience=50")


def test_train_takes_the_run_settings(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bpr"
    flags = ("--threads", "1", "--device", "cpu", "--max-seconds", "0.000001")
    ok("train", "bpr", "--data", tiny_data, "--out", out, *BPR, *flags)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1  # the time budget stopped the 50 epochs after the first
    model = Recommender.load(out)
    assert "threads" not in model.config.model_dump()  # not part of the saved model


def test_a_run_setting_given_as_a_model_parameter_says_where_it_moved(
    tiny_data: Path, tmp_path: Path
) -> None:
    result = run("train", "bpr", "--data", tiny_data, "--out", tmp_path / "m", "--set", "threads=2")
    fails(result, "threads is a run setting now", "--threads")
    result = run("compare", "multvae", "--data", tiny_data, "--set", "multvae.precision=bf16")
    fails(result, "precision is a run setting now", "--precision")


def test_bad_run_settings_fail_in_one_line(tiny_data: Path, tmp_path: Path) -> None:
    result = run("train", "pop", "--data", tiny_data, "--out", tmp_path / "m", "--device", "x")
    fails(result, "not a torch device", "'x'")
    result = run("train", "pop", "--data", tiny_data, "--out", tmp_path / "m", "--threads", "0")
    fails(result, "--threads")
    result = run(
        "train", "bpr", "--data", tiny_data, "--out", tmp_path / "m", "--precision", "bf16"
    )
    fails(result, "runs in fp32, not precision 'bf16'")


def test_compare_and_config_files_take_the_run_settings(tiny_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'[compare]\nk = [5]\ndata = "{tiny_data}"\nthreads = 1\nmax_seconds = 60\n')
    result = ok(
        "--config", config, "compare", "pop", "bpr", "--set", "bpr.epochs=1", "--device", "cpu"
    )
    assert "bpr" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nthreads = 0\n")
    fails(run("--config", bad, "train", "pop"), "[train] threads")
