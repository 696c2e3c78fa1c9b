"""The `tuijian` command line: quickstart, data, train, evaluate, compare, recommend, models."""

from tuijian.cli.app import app, main

__all__ = ["app", "main"]
