"""`tuijian data prepare` and `tuijian data synth`: raw logs in, a saved Split out."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer

from tuijian.cli.common import (
    DATA_MARKER,
    REQUIRED,
    TidyCommand,
    TidyGroup,
    check_target,
    console,
    options,
    prepare_table,
    require,
    split_table,
    staged_data,
)
from tuijian.cli.config import PrepareOptions, SynthOptions, coerce, default
from tuijian.data import (
    PrepareConfig,
    PrepareReport,
    RawData,
    Split,
    build_dataset,
    fixed_split,
    load,
    make_split,
    prepare,
)
from tuijian.data.columns import INTERACTION_COLUMNS
from tuijian.data.sources import FORMATS, LOADERS
from tuijian.data.split import user_shares
from tuijian.data.synthetic import shop_dataset
from tuijian.errors import ConfigError

SHOP_WEIGHTS = {"view": 1.0, "cart": 3.0, "buy": 5.0}
"""Event weights of the synthetic shop: a buy says more than a cart, a cart more than a view."""
_PART = "__part"

app = typer.Typer(
    cls=TidyGroup, help="Prepare data: raw logs -> cleaned interactions -> a saved split."
)


def loader_options(fmt: str, values: dict[str, Any]) -> dict[str, Any]:
    """Source options from `--option key=value`: interaction column names go to the `columns`
    mapping (a number is a column position), other keys are converted to the loader's types."""
    if fmt not in LOADERS:
        raise ConfigError(f"unknown data format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    hints = typing.get_type_hints(LOADERS[fmt])
    given = coerce(values.get("columns"), dict[str, Any] | None)
    if given is not None and not isinstance(given, dict):
        raise ConfigError(
            f"--option columns={values['columns']!r} is not a mapping; give "
            "columns={'user_id': 'userId'} or one --option user_id=userId per column"
        )
    columns = dict(given or {})
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "columns":
            continue
        if key in INTERACTION_COLUMNS:
            digits = isinstance(value, str) and value.isdigit()
            columns[key] = int(value) if digits else value
        elif key == "separator" and value in ("\\t", "tab"):
            out[key] = "\t"  # a tab is hard to type in a shell
        else:
            out[key] = coerce(value, hints.get(key, Any))
    if columns:
        out["columns"] = columns
    return out


def prepare_and_split(
    raw: RawData,
    config: PrepareConfig,
    split: str,
    *,
    ratios: list[float],
    seed: int,
    unseen: str,
    query_fraction: float = 0.8,
    query_order: str = "random",
) -> tuple[Split, PrepareReport]:
    """Prepare a source's interactions and cut them with the named split protocol.

    For the `users` protocol, `ratios` are shares of users (train, [valid,] test) and each
    held-out user's `query_fraction` of rows (random, or the earliest) is its query history.

    A fixed split (a published train/test, e.g. LightGCN files) is prepared as one table, so
    filters such as the k-core see all parts, and then cut back into its parts (a user-item
    pair found in two parts is aggregated into the later one: train, valid, test).
    """
    features = {"item_features": raw.item_features, "user_features": raw.user_features}
    if split == "fixed":
        if raw.fixed_split is None:
            raise ConfigError(
                f"{raw.name}: --split fixed needs a source with a published split (e.g. "
                "lightgcn); use random, temporal, user-temporal or leave-last-out"
            )
        tagged = pl.concat(
            frame.with_columns(pl.lit(part).alias(_PART)) for part, frame in raw.fixed_split.items()
        )
        frame, report = prepare(tagged, config)
        parts = {p: frame.filter(pl.col(_PART) == p).drop(_PART) for p in raw.fixed_split}
        return fixed_split(parts, unseen=unseen, name=raw.name, **features), report  # type: ignore[arg-type]
    frame, report = prepare(raw.interactions, config)
    data = build_dataset(frame, name=raw.name, **features)
    opts: dict[str, Any] = {"unseen": unseen}
    if split == "random":
        opts.update(ratios=ratios, seed=seed)
    elif split in ("temporal", "user-temporal"):
        opts["ratios"] = ratios
    elif split == "users":
        valid, test = user_shares(ratios)
        opts.update(
            valid=valid, test=test, query_fraction=query_fraction, order=query_order, seed=seed
        )
    return make_split(split, data, **opts), report


def write_prepared(split: Split, report: PrepareReport, folder: Path) -> None:
    """Write the split and the prepare report (`prepare.json`) into an empty `folder`."""
    split.save(folder)
    (folder / "prepare.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))


def save_prepared(split: Split, report: PrepareReport, out: Path) -> None:
    """Write the split and its report to `out` (swapped in whole: a failure leaves a previous
    `out` as it was) and show both as tables."""
    replacing = check_target(out, DATA_MARKER, "prepared data")
    with staged_data(out) as staging:
        write_prepared(split, report, staging)
    console.print(prepare_table(report))
    console.print(split_table(split))
    if replacing:
        console.print(f"replaced the prepared data that was in [bold]{out}[/]")
    console.print(f"prepared data saved to [bold]{out}[/]")


def synthetic_split(scale: str, seed: int) -> tuple[RawData, Split, PrepareReport]:
    """The synthetic shop, weighted view=1 / cart=3 / buy=5 and split 8:1:1 at random."""
    raw = shop_dataset(scale, seed=seed)
    config = PrepareConfig(event_weights=SHOP_WEIGHTS)
    split, report = prepare_and_split(
        raw, config, "random", ratios=[0.8, 0.1, 0.1], seed=seed, unseen="drop"
    )
    return raw, split, report


@app.command("prepare", cls=TidyCommand)
def prepare_command(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=f"One of: {', '.join(FORMATS)}.")],
    path: Annotated[Path, typer.Argument(help="The file or folder to read.")],
    out: Annotated[
        Path | None, typer.Option(metavar="DIR", help=f"Folder to write the split to. {REQUIRED}")
    ] = None,
    min_user_interactions: Annotated[
        int | None,
        typer.Option(help="k-core: keep users with at least N rows.", show_default="0"),
    ] = None,
    min_item_interactions: Annotated[
        int | None,
        typer.Option(help="k-core: keep items with at least N rows.", show_default="0"),
    ] = None,
    rating_threshold: Annotated[
        float | None, typer.Option(help="Keep rows with rating >= X (implicit from ratings).")
    ] = None,
    event_weights: Annotated[
        str | None, typer.Option(help="Weight per event, e.g. view=1,cart=3,buy=5.")
    ] = None,
    default_event_weight: Annotated[
        float | None, typer.Option(help="Weight of events missing from --event-weights.")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="random, temporal, user-temporal, leave-last-out, fixed or users (held-out "
            "users: some users leave training, part of their history is the query).",
            show_default="fixed when the source has one, else random",
        ),
    ] = None,
    ratios: Annotated[
        str | None,
        typer.Option(
            help="train,valid,test (or train,test) shares: of each user's rows, or of the "
            "users for --split users.",
            show_default=default(PrepareOptions, "ratios"),
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the random split.", show_default=default(PrepareOptions, "seed")
        ),
    ] = None,
    unseen: Annotated[
        str | None,
        typer.Option(
            help="drop or keep valid/test rows whose user or item is not in train.",
            show_default=default(PrepareOptions, "unseen"),
        ),
    ] = None,
    query_fraction: Annotated[
        float | None,
        typer.Option(
            help="--split users: share of a held-out user's rows given as the query history "
            "(the rest is the truth).",
            show_default=default(PrepareOptions, "query_fraction"),
        ),
    ] = None,
    query_order: Annotated[
        str | None,
        typer.Option(
            help="--split users: the history is a random subset per user (random) or the "
            "earliest rows (time).",
            show_default=default(PrepareOptions, "query_order"),
        ),
    ] = None,
    item_features: Annotated[
        list[str] | None,
        typer.Option(
            metavar="COLUMNS",
            help="csv / parquet: item feature columns, of the interactions or of --items, "
            "repeatable or a,b; `category` becomes the categories list (split at |), "
            "ours=theirs renames (title=name).",
        ),
    ] = None,
    user_features: Annotated[
        list[str] | None,
        typer.Option(metavar="COLUMNS", help="csv / parquet: user feature columns, as above."),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="csv / parquet: a table of item features, one row per item (all its columns "
            "unless --item-features names some).",
        ),
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="csv / parquet: a table of user features."),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            metavar="KEY=VALUE",
            help="Source option key=value, repeatable: separator=';', has_header=false, "
            "or a column mapping such as user_id=userId.",
        ),
    ] = None,
) -> None:
    """Load FORMAT from PATH, prepare, split and save to --out."""
    opts = options(ctx, "data.prepare", PrepareOptions)
    out_dir = require(opts.out, "--out")
    sides = {"item_features": opts.item_features, "user_features": opts.user_features}
    sides |= {"items": opts.items, "users": opts.users}
    given = {key: value for key, value in sides.items() if value is not None}
    raw = load(fmt, path, **(loader_options(fmt, opts.options) | given))
    console.print(
        f"read [bold]{raw.name}[/]: {raw.interactions.height:,} rows, "
        f"{raw.n_users:,} users, {raw.n_items:,} items"
    )
    config = PrepareConfig(
        event_weights=opts.event_weights,
        default_event_weight=opts.default_event_weight,
        rating_threshold=opts.rating_threshold,
        min_user_interactions=opts.min_user_interactions,
        min_item_interactions=opts.min_item_interactions,
    )
    split_name = opts.split or ("fixed" if raw.fixed_split is not None else "random")
    split_obj, report = prepare_and_split(
        raw,
        config,
        split_name,
        ratios=opts.ratios,
        seed=opts.seed,
        unseen=opts.unseen,
        query_fraction=opts.query_fraction,
        query_order=opts.query_order,
    )
    save_prepared(split_obj, report, out_dir)


@app.command("synth", cls=TidyCommand)
def synth_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option(metavar="DIR", help=f"Folder to write the split to. {REQUIRED}")
    ] = None,
    scale: Annotated[
        str | None,
        typer.Option(
            help="tiny (300 users), small (5,000) or 1m (25,000 users, ~1M events).",
            show_default=default(SynthOptions, "scale"),
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the shop and the split.", show_default="0"),
    ] = None,
) -> None:
    """Write the synthetic shop as prepared data (view=1, cart=3, buy=5; random 8:1:1)."""
    opts = options(ctx, "data.synth", SynthOptions)
    out_dir = require(opts.out, "--out")
    raw, split, report = synthetic_split(opts.scale, opts.seed)
    console.print(
        f"synthetic shop ({opts.scale}, seed {opts.seed}): {raw.interactions.height:,} events"
    )
    save_prepared(split, report, out_dir)
