"""Benchmarks of `tuijian serve` (docs/benchmarks/serving.md).

`load`: a 64-factor ALS over a 50,000-item synthetic shop served by `tuijian serve` (one worker,
one thread), driven from this separate process over loopback by an async httpx client: a fixed
200 requests/s of `GET /v1/users/{user_id}/recommendations`, then as fast as it answers with
10 % event posts mixed in; `--model sasrec` serves a SASRec (64 dims, length 50) instead.
`explain`: explanation fidelity on the synthetic shop.

    nice -n 10 .venv/bin/python benchmarks/serving.py load [--model sasrec]
    nice -n 10 .venv/bin/python benchmarks/serving.py explain --scale small
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from tuijian.cli.common import save_fitted
from tuijian.cli.data_commands import SHOP_WEIGHTS, prepare_and_split, write_prepared
from tuijian.data import PrepareConfig
from tuijian.data.synthetic import SyntheticConfig, generate, shop_dataset
from tuijian.models.query import Query, QueryBatch
from tuijian.models.registry import get_model

WORK = Path(os.environ.get("TUIJIAN_BENCH_DIR", "/tmp/tuijian-bench")) / "serving"
KEY = "bench-key"
SHOP = SyntheticConfig(n_users=20_000, n_items=56_000, n_interactions=800_000, n_categories=12)


LOAD_MODELS = {
    "als": {"factors": 64, "iterations": 8, "num_threads": 1},
    # trained briefly with the one-negative loss: the load test measures serving, not accuracy
    "sasrec": {"hidden_size": 64, "max_len": 50, "n_layers": 2, "loss": "bce", "epochs": 2},
}


def build(root: Path, name: str = "als") -> Path:
    """The 50,000-item shop prepared into root/data and `name` (64 dims) saved in root/name."""
    model_dir = root / name
    if (model_dir / "fit.json").is_file():
        return model_dir
    start = time.perf_counter()
    raw = generate(SHOP)
    split, report = prepare_and_split(
        raw,
        PrepareConfig(event_weights=SHOP_WEIGHTS),
        "random",
        ratios=[0.9, 0.05, 0.05],
        seed=0,
        unseen="drop",
    )
    write_prepared(split, report, root / "data")
    model = get_model(name, **LOAD_MODELS[name]).fit(split.train)
    save_fitted(model, model_dir, root / "data", time.perf_counter() - start)
    print(
        f"built {split.train.n_users:,} users x {split.train.n_items:,} items, "
        f"{split.train.n_interactions:,} interactions in {time.perf_counter() - start:.0f} s"
    )
    return model_dir


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(model_dir: Path, db: Path, port: int, workers: int = 1) -> subprocess.Popen:
    """`tuijian serve` in its own process, once /health answers."""
    env = {**os.environ, "TUIJIAN_API_KEY": KEY, "OMP_NUM_THREADS": "1", "TUIJIAN_THREADS": "1"}
    cli = "import sys; from tuijian.cli import app; sys.exit(app())"
    cmd = [sys.executable, "-c", cli, "serve", str(model_dir), "--port", str(port)]
    cmd += ["--events-db", str(db), "--workers", str(workers)]
    # its own process group, so `stop` ends the workers of --workers N too
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    stop(proc)
    raise SystemExit("server did not start")


def stop(proc: subprocess.Popen) -> None:
    """End the server and every worker it started."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _summary(name: str, lat: list[float], errors: int, seconds: float) -> dict:
    ms = np.array(lat) * 1e3
    row = {
        "phase": name,
        "requests": len(lat),
        "errors": errors,
        "seconds": round(seconds, 2),
        "rps": round(len(lat) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }
    print(json.dumps(row), flush=True)
    return row


class Pool:
    """Keep-alive HTTP/1.1 connections over raw asyncio streams: a client that costs far less
    CPU per request than httpx, so on a shared 2-core machine the server's time is measured."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self.idle: asyncio.Queue = asyncio.Queue()
        self.opened = 0

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        return await self.idle.get()

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        """Send one request, read the whole answer; its status code."""
        reader, writer = await self._conn()
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {KEY}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        self.idle.put_nowait((reader, writer))
        return int(status_line.split()[1])


async def fixed_rate(port: int, users: list[str], rate: float, seconds: float) -> dict:
    """GET recommendations at `rate` per second (open loop: sends never wait for answers)."""
    rng = np.random.default_rng(0)
    lat: list[float] = []
    errors = 0
    pool = Pool(port, 64)

    async def one(user: str) -> None:
        nonlocal errors
        t = time.perf_counter()
        status = await pool.request("GET", f"/v1/users/{user}/recommendations?k=10")
        lat.append(time.perf_counter() - t)
        errors += status != 200

    start, tasks, n = time.perf_counter(), [], int(rate * seconds)
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(users[rng.integers(len(users))])))
    await asyncio.gather(*tasks)
    return _summary(f"GET at {rate:.0f}/s", lat, errors, time.perf_counter() - start)


async def saturate(
    port: int, users: list[str], items: list[str], seconds: float, conc: int
) -> dict:
    """`conc` clients in a closed loop, one request in ten an event post."""
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    pool = Pool(port, conc)

    async def worker(w: int) -> None:
        nonlocal errors
        rng = np.random.default_rng(w)
        n = 0
        while time.perf_counter() < stop:
            user = users[rng.integers(len(users))]
            t = time.perf_counter()
            if rng.random() < 0.1:
                item = items[rng.integers(len(items))]
                body = {"user_id": user, "item_id": item, "event": "view",
                        "timestamp": 1.8e9 + n, "event_id": f"w{w}-{n}"}  # fmt: skip
                status = await pool.request("POST", "/v1/events", json.dumps(body).encode())
            else:
                status = await pool.request("GET", f"/v1/users/{user}/recommendations")
            lat.append(time.perf_counter() - t)
            errors += status != 200
            n += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conc)))
    return _summary(f"closed loop x{conc}, 10 % events", lat, errors, time.perf_counter() - start)


def load(args: argparse.Namespace) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    model_dir = build(WORK, args.model)
    db = WORK / "events.db"
    db.unlink(missing_ok=True)
    port = _port()
    proc = serve(model_dir, db, port, args.workers)
    try:
        from tuijian.models.base import Recommender

        model = Recommender.load(model_dir)
        users, items = model.users_.ids.tolist(), model.items_.ids.tolist()
        asyncio.run(fixed_rate(port, users, 50, 3))  # warm-up
        for rate in args.rate:
            asyncio.run(fixed_rate(port, users, rate, args.seconds))
        asyncio.run(saturate(port, users, items, args.seconds, args.concurrency))
    finally:
        stop(proc)


def explain(args: argparse.Namespace) -> None:
    """Share of (user, top-3 item) cases where leaving out the top reason lowers the score, and
    how often the top reason shares the item's category against a random history item."""
    from tuijian.cli.data_commands import synthetic_split
    from tuijian.serving.engine import Catalogue, Served

    _, split, _ = synthetic_split(args.scale, seed=0)
    raw = shop_dataset(args.scale, seed=0)
    feats = raw.item_features
    cats = dict(
        zip(
            feats["item_id"].to_list(),
            [tuple(c) for c in feats["categories"].to_list()],
            strict=True,
        )
    )
    settings = {
        "itemknn": {"weighting": "bm25"},
        "ease": {"l2": 500.0},
        "als": {"factors": 32, "regularization": 1.0, "alpha": 2.0, "num_threads": 1},
    }
    rng = np.random.default_rng(0)
    users = split.train.users.ids[
        rng.choice(split.train.n_users, args.users, replace=False)
    ].tolist()
    for name, cfg in settings.items():
        model = get_model(name, **cfg).fit(split.train)
        served = Served(model, "bench", Catalogue({}, cats, {}))
        lowered = shared = cases = 0
        chance = 0.0
        start = time.perf_counter()
        for user in users:
            history = QueryBatch.build(model, [Query(user_id=user)]).history
            for item in model.recommend([user], 3)[0].ids.tolist():
                score, reasons, _ = served.explain(Query(user_id=user), item)
                without = history.copy()
                without[0, reasons[0]] = 0
                without.eliminate_zeros()
                after = float(
                    np.asarray(model.score_history(without, model.items_.index([item])))[0, 0]
                )
                lowered += after < score - 1e-6
                own = set(cats[item])
                shared += bool(own & set(cats[model.items_.id(reasons[:1])[0]]))
                chance += np.mean(
                    [bool(own & set(cats[i])) for i in model.items_.id(history.indices)]
                )
                cases += 1
        ms = (time.perf_counter() - start) / cases * 1e3
        print(
            json.dumps(
                {
                    "model": name,
                    "scale": args.scale,
                    "cases": cases,
                    "top_reason_lowers": round(lowered / cases, 3),
                    "top_reason_same_category": round(shared / cases, 3),
                    "random_history_item_same_category": round(chance / cases, 3),
                    "ms_per_explanation": round(ms, 2),
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True)
    p = sub.add_parser("load")
    p.add_argument("--rate", type=float, nargs="+", default=[100, 200])
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--model", choices=sorted(LOAD_MODELS), default="als")
    p.set_defaults(run=load)
    p = sub.add_parser("explain")
    p.add_argument("--scale", default="small")
    p.add_argument("--users", type=int, default=200)
    p.set_defaults(run=explain)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
