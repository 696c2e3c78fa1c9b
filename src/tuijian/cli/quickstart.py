"""`tuijian quickstart`: the whole path on the synthetic shop in about ten seconds on two cores."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import polars as pl
import typer
from rich.table import Table

from tuijian.cli.common import (
    Outcome,
    console,
    fit_and_evaluate,
    item_titles,
    options,
    prepare_table,
    save_fitted,
    split_table,
    staged_folder,
)
from tuijian.cli.config import QuickstartOptions
from tuijian.cli.data_commands import synthetic_split, write_prepared
from tuijian.cli.model_commands import compare_table
from tuijian.data import Columns, Split
from tuijian.data.synthetic import SEGMENT
from tuijian.models.registry import get_model

C = Columns
MODELS: dict[str, dict[str, object]] = {
    "pop": {},
    "itemknn": {"weighting": "bm25"},
    "ease": {"l2": 500.0},
    "als": {"factors": 32, "regularization": 1.0, "alpha": 2.0},
    "content": {},
}
"""Quick classic models and their settings: a baseline, neighbours, a linear autoencoder,
factors and text."""
QUICKSTART_MARKER = "data/split.json"
"""A previous quickstart folder (which a new quickstart --out replaces whole) holds this."""
K = 10
N_USERS_SHOWN = 2
N_HISTORY = 8
MIN_HISTORY = 8


def quickstart_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the data and models.", show_default="a new temp folder"),
    ] = None,
    scale: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Synthetic shop -> prepare -> split -> 5 models -> comparison -> recommendations."""
    opts = options(ctx, "quickstart", QuickstartOptions)
    start = time.perf_counter()
    out_dir = opts.out or Path(tempfile.mkdtemp(prefix="tuijian-quickstart-"))
    with staged_folder(out_dir, QUICKSTART_MARKER, "quickstart") as staging:
        split, outcomes = _data_and_models(opts.scale, staging, out_dir)
    console.print(compare_table(outcomes, K))
    console.print(
        f"Full ranking over all {split.train.n_items:,} items; each user's train and valid "
        "items are excluded. Coverage: share of the catalogue in some top-10."
    )

    best = max(outcomes, key=lambda o: o.result.summary[f"ndcg@{K}"])
    console.rule(f"3. recommendations from {best.name}, the best by NDCG@{K}")
    for user_idx in _shown_users(split):
        _show_user(int(user_idx), split, best)

    console.rule("done")
    console.print(f"prepared data: [bold]{out_dir / 'data'}[/]")
    console.print(f"models:        [bold]{out_dir / 'models'}[/]/<name>")
    console.print(f"wall time:     {time.perf_counter() - start:.1f} s")
    user = split.train.users.id([_shown_users(split)[0]])[0]
    console.print("next, try:")
    console.print(f"  tuijian recommend {out_dir / 'models' / best.name} --user {user}")
    console.print(f"  tuijian compare pop ease userknn --data {out_dir / 'data'}")


def _data_and_models(scale: str, staging: Path, out: Path) -> tuple[Split, list[Outcome]]:
    """Steps 1 and 2: the shop prepared into `staging/data`, each model fitted, evaluated and
    saved into `staging/models/<name>` (with `fit.json`, so `recommend` finds the titles)."""
    console.rule("1. data: a synthetic shop, prepared and split")
    raw, split, report = synthetic_split(scale, seed=0)
    console.print(
        f"{raw.interactions.height:,} events (view, cart, buy) by {raw.n_users:,} users on "
        f"{raw.n_items:,} items; weights view=1, cart=3, buy=5; one row per user-item pair"
    )
    write_prepared(split, report, staging / "data")
    console.print(prepare_table(report))
    console.print(split_table(split))

    console.rule(f"2. train {len(MODELS)} models, evaluate on test")
    outcomes = []
    for name, settings in MODELS.items():
        folder = staging / "models" / name
        model = get_model(name, **settings)
        outcome = fit_and_evaluate(name, model, split, (K,), folder / "train_log.jsonl")
        # fit.json records the data folder where staging/data is about to be swapped in
        save_fitted(outcome.model, folder, out / "data", outcome.fit_seconds, outcome.training)
        outcomes.append(outcome)
    return split, outcomes


def _shown_users(split: Split) -> np.ndarray:
    """Users to show: the first ones (by id) with a test part and a history long enough."""
    history = np.diff(split.train.matrix.indptr)
    candidates = split.test.active_users
    return candidates[history[candidates] >= MIN_HISTORY][:N_USERS_SHOWN]


def _show_user(user_idx: int, split: Split, best: Outcome) -> None:
    """A user's latest train events next to the best model's list (hits in test marked)."""
    train = split.train
    user_id = str(train.users.id([user_idx])[0])
    titles = item_titles(train)
    rows = train.interactions.filter(pl.col(C.user_idx) == user_idx)
    if train.has_timestamps:
        rows = rows.sort(C.timestamp)
    segment = ""
    feats = train.user_features
    if feats is not None and SEGMENT in feats.columns:
        found = feats.filter(pl.col(C.user_id) == user_id)[SEGMENT]
        segment = f" (segment {found[0]})" if len(found) else ""
    history = Table(
        title=f"user {user_id}{segment}: last {N_HISTORY} of {rows.height} items in train",
        title_justify="left",
    )
    for name in ("date", "event", "item", "title"):
        history.add_column(name)
    for row in rows.tail(N_HISTORY).iter_rows(named=True):
        item = str(train.items.id([row[C.item_idx]])[0])
        when = row.get(C.timestamp)
        date = datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%d") if when else ""
        history.add_row(date, str(row.get(C.event) or ""), item, titles.get(item, ""))
    console.print(history)

    truth = set(split.test.items.id(split.test.matrix[user_idx].indices).tolist())
    recs = best.model.recommend([user_id], k=K)[0]
    table = Table(
        title=f"{best.name}: top {K} for {user_id} (✓ = one of their held-out test items)",
        title_justify="left",
    )
    for name in ("rank", "item", "title", "score", "test"):
        table.add_column(name, justify="right" if name in ("rank", "score") else "left")
    for rank, (item, score) in enumerate(zip(recs.ids, recs.scores, strict=True), start=1):
        item = str(item)
        hit = "✓" if item in truth else ""
        table.add_row(str(rank), item, titles.get(item, ""), f"{score:.3f}", hit)
    console.print(table)
