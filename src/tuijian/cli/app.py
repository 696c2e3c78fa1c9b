"""The `tuijian` typer app: global flags, one-line errors, and the command table."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from tuijian.cli.common import (
    THREADS_ENV,
    State,
    TidyCommand,
    TidyHelp,
    print_error,
    state,
    thread_limits,
)
from tuijian.cli.config import load_config
from tuijian.cli.data_commands import app as data_app
from tuijian.cli.model_commands import (
    compare_command,
    evaluate_command,
    models_command,
    recommend_command,
    train_command,
)
from tuijian.cli.quickstart import quickstart_command
from tuijian.cli.serve_commands import events_app, serve_command
from tuijian.errors import TuijianError

REPORTED = (TuijianError, OSError, ValidationError)
"""Errors shown as one `error: ...` line (with a traceback only under --debug)."""


class ReportingGroup(TidyHelp, TyperGroup):
    """The root command group: turns expected errors into one red line and exit code 1."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except REPORTED as exc:
            if state(ctx).debug or isinstance(exc, BrokenPipeError):
                raise
            print_error(exc)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=ReportingGroup,
    help="tuijian: personalized recommendation from raw logs to honest evaluation and top-K.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(show: bool) -> None:
    """Print the installed version of tuijian and exit (`--version`)."""
    if show:
        typer.echo(f"tuijian {version('tuijian')}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="TOML file of option values, one table per command (see docs)."
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            envvar=THREADS_ENV,
            show_envvar=True,
            help="Threads of torch, BLAS and implicit for the whole command (default: each "
            "library's own, usually all cores).",
        ),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Global flags; they go before the command: `tuijian --threads 4 train ...`."""
    ctx.obj = State(debug=debug, threads=threads)
    if threads is not None:
        ctx.with_resource(thread_limits(threads))
    if config is not None:
        ctx.obj.config = load_config(config)


for _name, _command in {
    "quickstart": quickstart_command,
    "train": train_command,
    "evaluate": evaluate_command,
    "compare": compare_command,
    "recommend": recommend_command,
    "models": models_command,
    "serve": serve_command,
}.items():
    app.command(_name, cls=TidyCommand)(_command)
app.add_typer(data_app, name="data")
app.add_typer(events_app, name="events")


def main() -> None:
    """Console-script entry point (`tuijian`)."""
    app()
