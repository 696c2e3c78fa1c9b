"""Fixtures of the service tests: the tiny synthetic shop with saved models, and clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tuijian.cli.common import save_fitted
from tuijian.cli.data_commands import synthetic_split, write_prepared
from tuijian.models.registry import get_model
from tuijian.serving import Settings, create_app

KEY = "test-key"
MODELS = {
    "itemknn": {"weighting": "bm25"},  # history-native, item-item
    "ease": {"l2": 500.0},  # history-native, linear
    # fold-in, factors
    "als": {"factors": 16, "regularization": 1.0, "alpha": 2.0, "iterations": 8, "num_threads": 1},
    "pop": {},
    # sequence: the latest event is the last step of the sequence
    "sasrec": {"max_len": 20, "hidden_size": 16, "n_layers": 1, "epochs": 10, "lr": 0.01},
}


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic shop (300 users, 150 items) in `data/` and models in `models/<name>`,
    saved with `fit.json` like `tuijian quickstart` does (so titles and categories are found)."""
    root = tmp_path_factory.mktemp("shop")
    _, split, report = synthetic_split("tiny", seed=0)
    write_prepared(split, report, root / "data")
    for name, settings in MODELS.items():
        model = get_model(name, **settings).fit(split.train)
        save_fitted(model, root / "models" / name, root / "data", 0.0)
    return root


def client_for(model_dir: Path, **settings: object) -> Iterator[TestClient]:
    """A client of the app over `model_dir` (lifespan run), the API key set."""
    options = {"api_key": KEY, "watch_seconds": 0, **settings}  # reloads only when a test asks
    app = create_app(Settings(model_dir, **options))  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client


@pytest.fixture
def knn(shop: Path) -> Iterator[TestClient]:
    yield from client_for(shop / "models" / "itemknn")


@pytest.fixture
def als(shop: Path) -> Iterator[TestClient]:
    yield from client_for(shop / "models" / "als")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: Path, db: Path, port: int) -> subprocess.Popen:
    """`tuijian serve` in its own process, once it answers /health."""
    env = {**os.environ, "TUIJIAN_API_KEY": KEY, "OMP_NUM_THREADS": "1"}
    cli = "import sys; from tuijian.cli import app; sys.exit(app())"
    cmd = [sys.executable, "-c", cli, "serve", str(model_dir), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--events-db", str(db)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
