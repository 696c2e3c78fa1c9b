"""Runs a person can watch and control: threads, epoch lines without a terminal, help, version."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_info

from tests.cli.conftest import RUNNER, ok, run
from tuijian.cli import app
from tuijian.cli.common import THREADS_ENV, thread_limits
from tuijian.data import Split
from tuijian.models.base import Recommender

BPR = ("--set", "embedding_size=4", "--set", "epochs=3", "--set", "patience=10")
COMMANDS = (
    (),
    ("quickstart",),
    ("data",),
    ("data", "prepare"),
    ("data", "synth"),
    ("train",),
    ("evaluate",),
    ("compare",),
    ("recommend",),
    ("models",),
)


def test_train_without_a_terminal_logs_each_epoch_and_the_best(
    tiny_data: Path, tmp_path: Path
) -> None:
    stdout = ok("train", "bpr", "--data", tiny_data, "--out", tmp_path / "m", *BPR).stdout
    lines = re.findall(r"bpr epoch (\d)/3: loss [\d.]+, ndcg@10 [\d.]+, [\d.]+ s", stdout)
    assert lines == ["1", "2", "3"], stdout
    log = [
        json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()
    ]
    best = max(range(3), key=lambda e: log[e]["valid"]["ndcg@10"])
    expected = f"best epoch {best + 1} of 3 (ndcg@10 {log[best]['valid']['ndcg@10']:.4f})"
    assert expected in stdout and "stopped by max epochs" in stdout and "s per epoch" in stdout
    training = json.loads((tmp_path / "m" / "fit.json").read_text())["training"]
    assert training["epochs"] == 3 and training["best_epoch"] == best
    assert training["stopped_by"] == "max_epochs" and training["valid_metric"] == "ndcg@10"
    assert training["best_score"] == pytest.approx(log[best]["valid"]["ndcg@10"])
    assert training["epoch_seconds"] > 0


def test_compare_records_how_each_model_trained(tiny_data: Path, tmp_path: Path) -> None:
    out, logs = tmp_path / "compare.json", tmp_path / "logs"
    stdout = ok(
        "compare", "pop", "bpr", "--data", tiny_data, "--k", "10", "--json", out,
        "--log-dir", logs, "--set", "bpr.embedding_size=4", "--set", "bpr.epochs=3",
        "--set", "bpr.patience=10",
    ).stdout  # fmt: skip
    payload = json.loads(out.read_text())
    training = payload["bpr"]["training"]
    assert training["epochs"] == 3 and training["stopped_by"] == "max_epochs"
    assert "training" not in payload["pop"]  # fitted in one go
    log = [json.loads(line) for line in (logs / "bpr.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [0, 1, 2]
    assert max(e["valid"]["ndcg@10"] for e in log) == pytest.approx(training["best_score"])
    best = f"ndcg@10 {training['best_score']:.4f}"
    row = rf"│ bpr\s+│\s+3 │\s+{training['best_epoch'] + 1} │ max epochs\s+│ {best} │\s+[\d.]+ │"
    assert re.search(row, stdout), stdout


def _spy_threads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, set[int]]]:
    """Record torch's and every BLAS / OpenMP pool's threads when a command loads its data."""
    seen: list[tuple[int, set[int]]] = []
    real = Split.load

    def load(path: Path) -> Split:
        seen.append((torch.get_num_threads(), {p["num_threads"] for p in threadpool_info()}))
        return real(path)

    monkeypatch.setattr(Split, "load", staticmethod(load))
    return seen


def test_global_threads_set_torch_blas_and_implicit(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy_threads(monkeypatch)
    before = torch.get_num_threads()
    ok("--threads", "1", "train", "als", "--data", tiny_data, "--out", tmp_path / "a")
    assert seen == [(1, {1})]
    assert Recommender.load(tmp_path / "a").config.num_threads == 1  # implicit's own pool
    assert torch.get_num_threads() == before  # restored after the command


def test_threads_from_the_environment_and_the_command_level_flag_wins(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy_threads(monkeypatch)
    args = ["train", "als", "--data", str(tiny_data), "--out", str(tmp_path / "a")]
    result = RUNNER.invoke(app, args, env={THREADS_ENV: "1"})
    assert result.exit_code == 0, result.output
    assert Recommender.load(tmp_path / "a").config.num_threads == 1
    ok("--threads", "2", "train", "als", "--data", tiny_data, "--out", tmp_path / "a",
       "--threads", "1")  # fmt: skip
    assert Recommender.load(tmp_path / "a").config.num_threads == 1
    assert seen == [(1, {1}), (1, {1})]
    ok("compare", "pop", "als", "--data", tiny_data, "--k", "10", "--threads", "1")
    assert seen[-1] == (1, {1})


def test_thread_limits_restore_what_was_there() -> None:
    before = torch.get_num_threads(), [p["num_threads"] for p in threadpool_info()]
    with thread_limits(1):
        assert torch.get_num_threads() == 1
        assert {p["num_threads"] for p in threadpool_info()} == {1}
    assert (torch.get_num_threads(), [p["num_threads"] for p in threadpool_info()]) == before


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "tuijian")
def test_help_has_no_type_noise(command: tuple[str, ...]) -> None:
    text = ok(*command, "--help").stdout
    assert "<bool>" not in text and "<list" not in text, text


def test_help_marks_required_options_and_points_to_models() -> None:
    result = RUNNER.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.stdout.split())
    assert "--data DIR Prepared data folder (data prepare / synth). [required]" in text
    assert "--out DIR Folder to save the fitted model to. [required]" in text
    assert "`tuijian models` lists the models" in text
    for command in (("compare",), ("data", "prepare"), ("data", "synth")):
        assert "[required]" in ok(*command, "--help").stdout, command


def test_version() -> None:
    assert run("--version").stdout.strip() == f"tuijian {version('tuijian')}"
