"""`tuijian train / evaluate / compare / recommend / models`: fit, score and query models."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import typer
from pydantic.fields import FieldInfo
from rich.table import Table
from rich.text import Text

from tuijian.cli.common import (
    REQUIRED,
    STOP_REASONS,
    Outcome,
    best_epoch_summary,
    check_same_data,
    check_target,
    coerce_overrides,
    command_threads,
    console,
    failure_message,
    fit_and_evaluate,
    fitted_on,
    item_titles,
    make_trainer,
    metrics_table,
    options,
    require,
    save_fitted,
    staged_folder,
    staged_model,
    state,
    write_json,
)
from tuijian.cli.config import CompareOptions, EvaluateOptions, RecommendOptions, TrainOptions
from tuijian.data import Split
from tuijian.errors import ConfigError, TuijianError
from tuijian.evaluation import evaluate
from tuijian.models.base import Recommender
from tuijian.models.neural import TorchConfig
from tuijian.models.query import Query
from tuijian.models.registry import available_models, get_model_class

ModelArg = Annotated[str, typer.Argument(metavar="MODEL", help="A registered model name.")]
DataOpt = Annotated[
    Path | None, typer.Option(metavar="DIR", help="Prepared data folder (data prepare / synth).")
]
RequiredDataOpt = Annotated[
    Path | None,
    typer.Option(metavar="DIR", help=f"Prepared data folder (data prepare / synth). {REQUIRED}"),
]
KsOpt = Annotated[
    str | None, typer.Option("--k", help="Cut-offs, e.g. 10,20.", show_default="10,20")
]
JsonFileOpt = Annotated[Path | None, typer.Option("--json", help="Also write the result here.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Model parameter, repeatable; `tuijian models MODEL` lists them with defaults.",
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(help="Torch device of the run: cpu, cuda, cuda:1...", show_default="cpu"),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="Threads of torch, BLAS and implicit for this command (overrides the global "
        "`tuijian --threads`).",
    ),
]
MaxSecondsOpt = Annotated[
    float | None, typer.Option(help="Time budget of each torch model's training, in seconds.")
]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(help="fp32, or bf16 autocast for models that support it.", show_default="fp32"),
]


COMPARE_FILE = "compare.json"
"""The results, written into a `compare --save` folder next to the fitted models."""


class ModelFailedError(TuijianError):
    """Some models of a comparison failed (the others' results are kept)."""


def build_model(name: str, values: dict[str, Any], threads: int | None = None) -> Recommender:
    """A registered model with parameters from `--set` (strings converted to field types);
    `threads` (the command's --threads) fills a model's own `num_threads` (implicit's ALS)
    unless --set gives it."""
    model_cls = get_model_class(name)
    values = coerce_overrides(model_cls, values)
    if threads is not None and "num_threads" in model_cls.config_class.model_fields:
        values.setdefault("num_threads", threads)
    return model_cls(**values)


def _data_for(model_dir: Path, data: Path | None, needed: bool) -> Path | None:
    """`--data`, else the folder the model was fitted on (recorded by `train`)."""
    if data is not None:
        return data
    recorded = fitted_on(model_dir)
    if recorded is None and needed:
        return require(None, "--data")
    return recorded


def train_command(
    ctx: typer.Context,
    model: ModelArg,
    data: RequiredDataOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help=f"Folder to save the fitted model to. {REQUIRED}"),
    ] = None,
    overrides: SetOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    max_seconds: MaxSecondsOpt = None,
    precision: PrecisionOpt = None,
) -> None:
    """Fit MODEL on the train part of --data (valid for early stopping) and save it to --out.

    `tuijian models` lists the models; `tuijian models MODEL` their parameters for --set.
    --device, --threads, --max-seconds and --precision are the run's settings (where and how
    fast it trains), not part of the saved model. A failed run leaves --out as it was.
    """
    opts = options(ctx, "train", TrainOptions)
    data_dir = require(opts.data, "--data")
    out_dir = require(opts.out, "--out")
    recommender = build_model(model, opts.overrides, command_threads(ctx, opts.threads))
    split = Split.load(data_dir)
    with staged_model(out_dir) as staging:  # --out is replaced only when all of this succeeds
        console.print(f"fitting [bold]{model}[/] on {split.train!r}")
        start = time.perf_counter()
        trainer = make_trainer(staging / "train_log.jsonl", opts.run_settings())
        recommender.fit(split.train, valid=split.validation(), trainer=trainer)
        seconds = time.perf_counter() - start
        save_fitted(recommender, staging, data_dir, seconds, trainer.history.summary())
    summary = best_epoch_summary(trainer.history)
    if summary:
        console.print(summary)
    console.print(f"fitted in {seconds:.2f} s; saved to [bold]{out_dir}[/]")


def evaluate_command(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Argument(help="A folder written by `tuijian train`.")],
    data: DataOpt = None,
    k: KsOpt = None,
    part: Annotated[str | None, typer.Option(help="test or valid.", show_default="test")] = None,
    json_path: JsonFileOpt = None,
) -> None:
    """Full-ranking evaluation of a saved model (its training items excluded)."""
    opts = options(ctx, "evaluate", EvaluateOptions)
    recommender = Recommender.load(model_dir)
    data_dir = _data_for(model_dir, opts.data, needed=True)
    split = Split.load(data_dir)
    check_same_data(recommender, split, model_dir, data_dir)
    result = evaluate(recommender, split, part=opts.part, ks=tuple(opts.k))
    proto = result.protocol
    title = (
        f"{recommender.name} on {opts.part}: full ranking over {proto['n_items']:,} items, "
        f"{proto['n_users']:,} users"
    )
    console.print(title)
    console.print(metrics_table(result.summary))
    if opts.json_path is not None:
        write_json(opts.json_path, result.to_dict())


def compare_command(
    ctx: typer.Context,
    models: Annotated[
        list[str], typer.Argument(metavar="MODEL...", help="Model names (see `tuijian models`).")
    ],
    data: RequiredDataOpt = None,
    k: KsOpt = None,
    json_path: JsonFileOpt = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="MODEL.KEY=VALUE",
            help="Parameter of one model, repeatable, e.g. ease.l2=200.",
        ),
    ] = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    max_seconds: MaxSecondsOpt = None,
    precision: PrecisionOpt = None,
    save: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Also keep the fitted models: DIR/<model>, loadable."),
    ] = None,
    log_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Write each model's epoch log to DIR/<model>.jsonl."),
    ] = None,
) -> None:
    """Train and evaluate each MODEL on the same split; a table sorted by NDCG, with how each
    model trained (epochs, best epoch, why it stopped)."""
    opts = options(ctx, "compare", CompareOptions)
    data_dir = require(opts.data, "--data")
    stray = sorted(set(opts.overrides) - set(models))
    if stray:
        raise ConfigError(f"--set names model(s) {', '.join(stray)} not being compared")
    threads = command_threads(ctx, opts.threads)
    built = {name: build_model(name, opts.overrides.get(name, {}), threads) for name in models}
    split = Split.load(data_dir)
    if opts.save is not None:
        check_target(opts.save, COMPARE_FILE, "compare --save")
    console.print(f"comparing {len(built)} models on {split.train!r}")
    run = opts.run_settings()
    if opts.log_dir is not None:
        opts.log_dir.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    failed: dict[str, str] = {}
    for name, model in built.items():
        log = None if opts.log_dir is None else opts.log_dir / f"{name}.jsonl"
        try:
            outcomes.append(fit_and_evaluate(name, model, split, opts.k, log, run))
        except Exception as exc:  # one model failing does not discard the others' results
            if state(ctx).debug:
                raise
            failed[name] = failure_message(exc)
            console.print(f"  [red]failed[/] {name}: {failed[name]}")
    console.print(compare_table(outcomes, min(opts.k), failed=failed))
    training = training_table(outcomes)
    if training is not None:
        console.print(training)
    protocol = (
        {k: v for k, v in outcomes[0].result.protocol.items() if k != "seconds"} if outcomes else {}
    )
    rows: dict[str, Any] = {o.name: o.row() for o in outcomes} | {
        name: {"error": message} for name, message in failed.items()
    }
    payload = {**{name: rows[name] for name in built}, "protocol": protocol}
    if opts.json_path is not None:
        write_json(opts.json_path, payload)
    if opts.save is not None:
        with staged_folder(opts.save, COMPARE_FILE, "compare --save") as staging:
            for o in outcomes:
                save_fitted(o.model, staging / o.name, data_dir, o.fit_seconds, o.training)
            write_json(staging / COMPARE_FILE, payload, quiet=True)
        console.print(f"saved {len(outcomes)} fitted model(s) to [bold]{opts.save}[/]/<model>")
    if failed:
        raise ModelFailedError(
            f"{len(failed)} of {len(built)} models failed: {', '.join(failed)} "
            "(their errors are in the table" + (" and the JSON)" if opts.json_path else ")")
        )


def compare_table(
    outcomes: list[Outcome], k: int, title: str = "comparison", failed: dict[str, str] | None = None
) -> Table:
    """One row per model, best NDCG@k first: accuracy, catalogue coverage and timings; then the
    models that failed, with their error."""
    table = Table(title=f"{title} (full ranking, test part, sorted by NDCG@{k})")
    table.add_column("model")
    names = (f"NDCG@{k}", f"Recall@{k}", f"HR@{k}", f"coverage@{k}", "fit s", "eval s")
    for name in names:
        table.add_column(name, justify="right")
    if failed:
        table.add_column("error", overflow="fold")
    ranked = sorted(outcomes, key=lambda o: o.result.summary[f"ndcg@{k}"], reverse=True)
    for o in ranked:
        s = o.result.summary
        table.add_row(
            o.name,
            f"{s[f'ndcg@{k}']:.4f}",
            f"{s[f'recall@{k}']:.4f}",
            f"{s[f'hit@{k}']:.4f}",
            f"{s[f'coverage@{k}']:.3f}",
            f"{o.fit_seconds:.2f}",
            f"{o.evaluate_seconds:.2f}",
        )
    for name, message in (failed or {}).items():
        table.add_row(name, *("-" for _ in names), Text(message, style="red"))
    return table


def training_table(outcomes: list[Outcome]) -> Table | None:
    """How each epoch-trained model trained: epochs run, best epoch and its validation score,
    why it stopped and the median seconds of an epoch (None when no model trained in epochs)."""
    trained = [o for o in outcomes if o.training is not None]
    if not trained:
        return None
    table = Table(title="training (epochs from 1)")
    table.add_column("model")
    for name in ("epochs", "best", "stopped by", "best valid", "s/epoch"):
        table.add_column(name, justify="left" if name == "stopped by" else "right")
    for o in trained:
        t = o.training or {}
        best = "-" if t["best_epoch"] is None else str(t["best_epoch"] + 1)
        score = "-" if t["best_score"] is None else f"{t['valid_metric']} {t['best_score']:.4f}"
        table.add_row(
            o.name,
            str(t["epochs"]),
            best,
            STOP_REASONS.get(t["stopped_by"], t["stopped_by"]),
            score,
            f"{t['epoch_seconds']:.2f}",
        )
    return table


def recommend_command(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Argument(help="A folder written by `tuijian train`.")],
    user: Annotated[
        list[str] | None, typer.Option(metavar="ID", help="A user id; repeatable.")
    ] = None,
    item: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ID",
            help="An item the user(s) interacted with just now, oldest first; repeatable. "
            "Without --user: the history of an anonymous visitor.",
        ),
    ] = None,
    k: Annotated[
        int | None, typer.Option("-k", "--k", help="List length.", show_default="10")
    ] = None,
    json_out: Annotated[
        bool | None, typer.Option("--json", help="Print JSON instead of tables.")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Prepared data for item titles (default: the data it was fitted on)."),
    ] = None,
) -> None:
    """Top-k items for each --user (or an anonymous --item history), best first, with titles
    when the data has them; fresh --item events extend each user's history and leave the list."""
    opts = options(ctx, "recommend", RecommendOptions)
    users: list[str | None] = list(opts.user) or ([None] if opts.item else [])
    require(users, "--user or --item")
    recommender = Recommender.load(model_dir)
    queries = [Query(user_id=u, items=opts.item) for u in users]
    lists = recommender.recommend(queries, k=opts.k)
    users = [u if u is not None else "(anonymous)" for u in users]
    data_dir = _data_for(model_dir, opts.data, needed=False)
    titles = item_titles(Split.load(data_dir).train) if data_dir is not None else {}
    if opts.json_out:
        payload = {
            str(u): {
                "source": items.source,
                "items": [
                    {"rank": r + 1, "item_id": str(i), "score": float(s)}
                    | ({"title": titles.get(str(i))} if titles else {})
                    for r, (i, s) in enumerate(zip(items.ids, items.scores, strict=True))
                ],
            }
            for u, items in zip(users, lists, strict=True)
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    for u, items in zip(users, lists, strict=True):
        title = f"{items.source}: top {opts.k} for user {u}"
        table = Table(title=title, title_justify="left")
        for name in ("rank", "item", "title", "score"):
            table.add_column(name, justify="right" if name in ("rank", "score") else "left")
        for r, (i, s) in enumerate(zip(items.ids, items.scores, strict=True)):
            table.add_row(str(r + 1), str(i), titles.get(str(i), ""), f"{s:.4f}")
        console.print(table)


def _defaults(fields: dict[str, FieldInfo]) -> str:
    """`key=default, ...` of config fields."""
    return ", ".join(f"{k}={f.get_default(call_default_factory=True)!r}" for k, f in fields.items())


def models_command(
    name: Annotated[
        str | None, typer.Argument(metavar="[MODEL]", help="Show one model's parameters.")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="Also show the memory a fit on DIR's catalogue needs, per model."
        ),
    ] = None,
) -> None:
    """List the registered models with their parameters and defaults."""
    n_items = Split.load(data).train.n_items if data is not None else None
    shared = TorchConfig.model_fields
    if name is not None:
        cls = get_model_class(name)
        console.print(f"[bold]{name}[/]: {_summary(cls)}")
        table = Table()
        for column in ("parameter", "type", "default"):
            table.add_column(column)
        for key, info in cls.config_class.model_fields.items():
            default = info.get_default(call_default_factory=True)
            table.add_row(key, _type_name(info.annotation), repr(default))
        console.print(table)
        return
    table = Table(title="registered models (tuijian train MODEL --set key=value)")
    table.add_column("model", style="bold")
    table.add_column("what it does")
    table.add_column("parameters (defaults)")
    if n_items is not None:
        table.add_column(f"fit memory at {n_items:,} items", justify="right")
    for model in available_models():
        cls = get_model_class(model)
        fields = cls.config_class.model_fields
        torch_model = issubclass(cls.config_class, TorchConfig)
        own = {k: f for k, f in fields.items() if not (torch_model and k in shared)}
        row = [model + (" *" if torch_model else ""), _summary(cls), _defaults(own)]
        if n_items is not None:
            row.append(_memory(cls.fit_memory(n_items)))
        table.add_row(*row)
    console.print(table)
    if n_items is not None:
        console.print("  fit memory: items x items arrays of a default fit; - : not quadratic")
    training = {k: f for k, f in shared.items() if k != "seed"}
    console.print(f"* torch models also take the training settings: {_defaults(training)}")
    console.print(
        "  and train / compare take the run's --device, --threads, --max-seconds, --precision"
    )


def _memory(size: int | None) -> str:
    """Bytes as MB / GB, or '-' for a model whose memory does not grow with items squared."""
    if size is None:
        return "-"
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB"


def _type_name(annotation: Any) -> str:
    """A readable type: `'adam' | 'sgd'` for literals, `int | None`, `tuple[int, ...]`."""
    if get_origin(annotation) is Literal:
        return " | ".join(repr(a) for a in get_args(annotation))
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _summary(cls: type[Recommender]) -> str:
    """First line of a model class's docstring."""
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
