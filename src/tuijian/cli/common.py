"""What the commands share: consoles, option merging, folders, tables and fit-then-evaluate."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import torch
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text
from threadpoolctl import threadpool_limits
from typer.core import TyperCommand, TyperGroup

from tuijian.cli.config import CommandOptions, FileConfig, by_name, coerce, merge_options
from tuijian.data import Columns, Dataset, PrepareReport, Split
from tuijian.errors import DataError, TuijianError
from tuijian.evaluation import EvaluationResult, evaluate
from tuijian.models.base import Recommender
from tuijian.training import Trainer, TrainingHistory

C = Columns
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
FIT_FILE = "fit.json"
"""Written next to a saved model by `train`: the data folder it was fitted on and the time."""

_M = TypeVar("_M", bound=CommandOptions)


THREADS_ENV = "TUIJIAN_THREADS"
"""Environment variable read by the global `--threads` when the flag is not given."""
REQUIRED = "\\[required]"
"""Marks an option that must be given (on the command line or in a --config file) in --help."""


@dataclass
class State:
    """Global flags, kept on the typer context for every command."""

    debug: bool = False
    config: FileConfig = field(default_factory=FileConfig)
    threads: int | None = None


@contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """Run with `threads` threads in torch (intra-op) and in every BLAS / OpenMP pool that
    threadpoolctl finds (numpy's and scipy's BLAS, implicit's OpenMP); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def command_threads(ctx: typer.Context, threads: int | None) -> int | None:
    """The threads of this command: a command's own `--threads` (train, compare), applied to
    every library like the global one, which it overrides; else the global `--threads`."""
    if threads is None:
        return state(ctx).threads
    ctx.with_resource(thread_limits(threads))
    return threads


class TidyHelp:
    """Mixin of commands and groups whose --help shows no `<bool>` after a flag (and options
    that take lists declare a metavar such as KEY=VALUE, so no `<list[str]>` either)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
            elif param.param_type_name == "argument" and param.nargs != 1:
                param.display_type_rich = _no_type  # MODEL... says it is a list already
        return params


def _no_type(ctx: Any) -> None:
    """No type column in --help (for an argument taking several values)."""


class TidyCommand(TidyHelp, TyperCommand):
    """A command with a tidy --help (see `TidyHelp`)."""


class TidyGroup(TidyHelp, TyperGroup):
    """A group of commands with a tidy --help (see `TidyHelp`)."""


def state(ctx: typer.Context) -> State:
    """The global state of this invocation (a fresh one when the root callback did not run)."""
    return ctx.obj if isinstance(ctx.obj, State) else State()


def options(ctx: typer.Context, section: str, model: type[_M]) -> _M:
    """The command's options: defaults < config file table `section` < flags typed here."""
    typed = {k: v for k, v in ctx.params.items() if v is not None and v != () and v != []}
    given = {k: v for k, v in by_name(model, typed).items() if k in model.model_fields}
    return merge_options(model, section, state(ctx).config, given)


def require(value: Any, flag: str) -> Any:
    """`value`, or a usage error saying that `flag` is needed (here or in the config file)."""
    if value is None or value == []:
        raise typer.BadParameter("required: give it here or in a --config file", param_hint=flag)
    return value


def error_message(exc: BaseException) -> str:
    """One line for an error the CLI reports without a traceback."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        text = f"{exc.title}.{loc}: {err['msg']} (got {err.get('input')!r})"
    elif isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def failure_message(exc: BaseException) -> str:
    """One line for an error of one model in a run of several: `error_message`, with the type
    of an unexpected (non-tuijian) exception in front."""
    message = error_message(exc)
    reported = isinstance(exc, TuijianError | OSError | ValidationError)
    return message if reported else f"{type(exc).__name__}: {message}"


def print_error(exc: BaseException) -> None:
    """Print `error: ...` in red on stderr, on one line whatever the terminal width."""
    err_console.print(Text(f"error: {error_message(exc)}", style="bold red"), soft_wrap=True)


# ---- folders ----------------------------------------------------------------------------------
def check_target(path: Path, marker: str, kind: str) -> bool:
    """Whether `path` holds a previous output of this kind (with `marker`, e.g. `config.json`);
    absent or empty is fine; a file or any other non-empty folder is refused, so nothing
    unrelated is ever replaced."""
    if path.exists() and not path.is_dir():
        raise DataError(f"{path} is a file; {kind} needs a folder")
    if path.is_dir() and any(path.iterdir()):
        if not (path / marker).is_file():
            raise DataError(f"{path} is not empty and not a {kind} folder; choose another")
        return True
    return False


@contextmanager
def staged_folder(path: Path, marker: str, kind: str) -> Iterator[Path]:
    """A new temporary folder beside `path` to write an output into; swapped in for `path` (a
    previous output of this kind, see `check_target`) only when the block succeeds. On any
    failure the temporary folder is removed and `path` is left byte-identical."""
    check_target(path, marker, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.chmod(0o777 & ~_umask())
    swap_in(tmp, path)


def swap_in(new: Path, path: Path) -> None:
    """Put the folder `new` at `path`: the previous folder is renamed aside, `new` renamed in
    (same file system, so each rename is atomic), and only then the previous one removed."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
        path.rename(old)
    new.rename(path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


MODEL_MARKER = "config.json"
DATA_MARKER = "split.json"


def staged_model(path: Path) -> AbstractContextManager[Path]:
    """`staged_folder` for a saved model."""
    return staged_folder(path, MODEL_MARKER, "saved model")


def staged_data(path: Path) -> AbstractContextManager[Path]:
    """`staged_folder` for prepared data."""
    return staged_folder(path, DATA_MARKER, "prepared data")


def save_fitted(
    model: Recommender,
    folder: Path,
    data: Path,
    fit_seconds: float,
    training: dict[str, Any] | None = None,
) -> None:
    """Save `model` to `folder` with its `fit.json` (the data it was fitted on, the time and,
    for epoch-trained models, how it trained: `TrainingHistory.summary`)."""
    model.save(folder)
    record: dict[str, Any] = {
        "model": model.name,
        "data": str(data.resolve()),
        "fit_seconds": round(fit_seconds, 4),
    }
    if training is not None:
        record["training"] = training
    (folder / FIT_FILE).write_text(json.dumps(record, indent=2))


def best_epoch_summary(history: TrainingHistory) -> str | None:
    """One line on how an epoch-trained run ended (None for models fitted in one go)."""
    if not history.epochs:
        return None
    n = len(history.epochs)
    stopped = history.stopped_by.replace("_", " ")
    if history.best_epoch is None:
        return f"trained {n} epochs without validation; stopped by {stopped}"
    best = next(e for e in history.epochs if e.epoch == history.best_epoch)
    metric = next(iter(best.valid or {}), "valid metric")
    per_epoch = statistics.median(e.train_seconds for e in history.epochs)
    return (
        f"best epoch {history.best_epoch + 1} of {n} ({metric} {history.best_score:.4f}), "
        f"weights restored; stopped by {stopped}; {per_epoch:.2f} s per epoch"
    )


STOP_REASONS = {
    "early_stopping": "patience",
    "time_budget": "budget",
    "max_epochs": "max epochs",
    "divergence": "divergence",
    "interrupted": "interrupted",
    "callback": "callback",
}
"""`TrainingHistory.stopped_by` as the compare table shows it."""


def fitted_on(model_dir: Path) -> Path | None:
    """The data folder a model saved by `train` was fitted on, if recorded and still there."""
    record = model_dir / FIT_FILE
    if not record.is_file():
        return None
    data = Path(json.loads(record.read_text())["data"])
    return data if (data / "split.json").is_file() else None


def check_same_data(model: Recommender, split: Split, model_dir: Path, data: Path) -> None:
    """Refuse to score a model with data whose user / item ids it was not fitted on."""
    if model.users_ != split.train.users or model.items_ != split.train.items:
        raise DataError(
            f"{model_dir} was fitted on other data than {data} (user or item ids differ); "
            f"train it on {data} first"
        )


# ---- models -----------------------------------------------------------------------------------
def coerce_overrides(model_cls: type[Recommender], values: Mapping[str, Any]) -> dict[str, Any]:
    """String parameter values converted to the types of the model's config fields."""
    fields = model_cls.config_class.model_fields
    return {
        key: coerce(value, fields[key].annotation) if key in fields else value
        for key, value in values.items()
    }


def make_trainer(log_path: Path | None = None, run: Mapping[str, Any] | None = None) -> Trainer:
    """A `Trainer` logging epochs to `log_path`, with the run settings `run` (`--device`,
    `--threads`, `--max-seconds`, `--precision`); torch models use it, others ignore it."""
    return Trainer(log_path=log_path, **(run or {}))


@dataclass(frozen=True)
class Outcome:
    """A model fitted and evaluated: its result and how long each stage took."""

    name: str
    model: Recommender
    result: EvaluationResult
    fit_seconds: float
    evaluate_seconds: float
    training: dict[str, Any] | None = None  # TrainingHistory.summary of epoch-trained models

    def row(self) -> dict[str, Any]:
        """Every metric@k, the timings and how the model trained (one entry of the compare
        JSON)."""
        timings = {
            "fit_seconds": round(self.fit_seconds, 4),
            "evaluate_seconds": round(self.evaluate_seconds, 4),
        }
        training = {} if self.training is None else {"training": self.training}
        return {**self.result.summary, **timings, **training}


def fit_and_evaluate(
    name: str,
    model: Recommender,
    split: Split,
    ks: Sequence[int],
    log_path: Path | None = None,
    run: Mapping[str, Any] | None = None,
) -> Outcome:
    """Fit on train (valid given for early stopping), evaluate on test, report one line."""
    console.print(f"  fitting [bold]{name}[/] ...")
    start = time.perf_counter()
    trainer = make_trainer(log_path, run)
    model.fit(split.train, valid=split.validation(), trainer=trainer)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = evaluate(model, split, part="test", ks=tuple(ks))
    evaluate_seconds = time.perf_counter() - start
    k = min(ks)
    console.print(
        f"  [green]done[/] {name}: fit {fit_seconds:.1f} s, evaluate {evaluate_seconds:.1f} s, "
        f"ndcg@{k} {result.summary[f'ndcg@{k}']:.4f}"
    )
    training = trainer.history.summary()
    return Outcome(name, model, result, fit_seconds, evaluate_seconds, training)


# ---- tables -----------------------------------------------------------------------------------
def _n(value: int) -> str:
    return f"{value:,}"


def prepare_table(report: PrepareReport) -> Table:
    """What each preparation step kept and removed."""
    table = Table(title="prepare", title_justify="left")
    for name in ("step", "rows", "removed", "users", "items", "setting"):
        table.add_column(
            name,
            justify="left" if name in ("step", "setting") else "right",
            overflow="fold",
        )
    for step in report.to_rows():
        table.add_row(
            step["step"],
            _n(step["rows_after"]),
            _n(step["rows_removed"]),
            _n(step["users_after"]),
            _n(step["items_after"]),
            step["detail"],
        )
    return table


def split_table(split: Split) -> Table:
    """Rows and users per part, and the cold rows the unseen policy dropped."""
    proto = split.protocol
    title = f"split: {proto.get('name', '?')}"
    if "ratios" in proto:
        title += " " + ":".join(f"{r:g}" for r in proto["ratios"])
    if proto.get("name") == "users":
        title += f" valid {proto['valid']:g} test {proto['test']:g}, "
        title += f"history {proto['query_fraction']:g} ({proto['order']})"
    if "seed" in proto:
        title += f" (seed {proto['seed']})"
    table = Table(title=title, title_justify="left")
    for name in ("part", "rows", "users", "dropped (unseen)"):
        table.add_column(name, justify="left" if name == "part" else "right")
    dropped = proto.get("dropped", {})
    for part in ("train", "valid", "test"):
        ds = split.parts().get(part)
        if ds is None:
            continue
        table.add_row(
            part, _n(ds.n_interactions), _n(len(ds.active_users)), _n(dropped.get(part, 0))
        )
    for part, history in split.histories.items():
        table.add_row(f"{part} history", _n(history.n_interactions), _n(history.active_users.size))
    return table


def metrics_table(summary: Mapping[str, float]) -> Table:
    """Metrics as rows and cut-offs as columns (`ndcg@10` goes to row ndcg, column @10)."""
    grid: dict[str, dict[str, float]] = {}
    ks: list[str] = []
    for key, value in summary.items():
        metric, _, k = key.partition("@")
        grid.setdefault(metric, {})[k] = value
        if k not in ks:
            ks.append(k)
    table = Table()
    table.add_column("metric")
    for k in ks:
        table.add_column(f"@{k}" if k else "", justify="right")
    for metric, row in grid.items():
        table.add_row(metric, *(f"{row[k]:.4f}" if k in row else "" for k in ks))
    return table


def item_titles(data: Dataset | None) -> dict[str, str]:
    """External item id -> title, from the item features when they have titles."""
    feats = None if data is None else data.item_features
    if feats is None or C.title not in feats.columns:
        return {}
    frame = feats.select(pl.col(C.item_id).cast(pl.Utf8), pl.col(C.title).cast(pl.Utf8))
    return dict(frame.drop_nulls().iter_rows())


def write_json(path: Path, payload: Any, quiet: bool = False) -> None:
    """Write `payload` as indented JSON (to a temporary file beside `path`, then renamed over
    it, so a failure never leaves half a report) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, default=str)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    if not quiet:
        console.print(f"wrote {path}")
