"""The `tuijian` typer app: global flags, one-line errors, and the command table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from tuijian.cli.common import State, print_error, state
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
from tuijian.errors import TuijianError

REPORTED = (TuijianError, OSError, ValidationError)
"""Errors shown as one `error: ...` line (with a traceback only under --debug)."""


class ReportingGroup(TyperGroup):
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


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    config: Annotated[
        Path | None,
        typer.Option(help="TOML file of option values, one table per command (see docs)."),
    ] = None,
) -> None:
    """Global flags; they go before the command: `tuijian --config run.toml train ...`."""
    ctx.obj = State(debug=debug)
    if config is not None:
        ctx.obj.config = load_config(config)


app.command("quickstart")(quickstart_command)
app.add_typer(data_app, name="data")
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("compare")(compare_command)
app.command("recommend")(recommend_command)
app.command("models")(models_command)


def main() -> None:
    """Console-script entry point (`tuijian`)."""
    app()
