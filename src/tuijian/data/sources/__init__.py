"""Readers of raw interaction logs: one module per format, each returning a checked RawData."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from tuijian.data.sources.base import RawData
from tuijian.data.sources.lightgcn import load_lightgcn
from tuijian.data.sources.movielens import load_movielens
from tuijian.data.sources.recbole import load_recbole
from tuijian.data.sources.retailrocket import load_retailrocket
from tuijian.data.sources.sequence import load_sequence
from tuijian.data.sources.tabular import from_frame, load_csv, load_parquet
from tuijian.data.sources.taobao import load_taobao
from tuijian.errors import ConfigError

LOADERS: Final[dict[str, Callable[..., RawData]]] = {
    "csv": load_csv,
    "parquet": load_parquet,
    "movielens": load_movielens,
    "recbole": load_recbole,
    "lightgcn": load_lightgcn,
    "sequence": load_sequence,
    "taobao": load_taobao,
    "retailrocket": load_retailrocket,
}
"""Format name (as the CLI spells it) -> loader."""

FORMATS: Final = tuple(LOADERS)


def load(format: str, path: str | Path, **options: Any) -> RawData:
    """Read `path` in the named format; `options` go to that format's loader.

    `name=` renames the result. Unknown formats or options raise ConfigError listing the
    valid ones.
    """
    if format not in LOADERS:
        raise ConfigError(f"unknown data format {format!r}; valid formats: {list(FORMATS)}")
    loader = LOADERS[format]
    name = options.pop("name", None)
    accepted = [
        p.name for p in inspect.signature(loader).parameters.values() if p.kind == p.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"format {format!r} does not take option(s) {unknown}; it takes {accepted or 'none'}"
        )
    raw = loader(path, **_typed_options(format, loader, options))
    return replace(raw, name=str(name)) if name is not None else raw


def _typed_options(format: str, loader: Callable[..., RawData], options: dict[str, Any]) -> dict:
    """`options` checked against the loader's parameter types (a bad value is one ConfigError
    naming the option, e.g. `has_header='maybe'`, instead of an error deep in a reader)."""
    hints = typing.get_type_hints(loader)
    out = {}
    for key, value in options.items():
        try:
            out[key] = TypeAdapter(hints.get(key, Any)).validate_python(value)
        except ValidationError:
            hint = hints.get(key, Any)
            want = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
            raise ConfigError(
                f"format {format!r}: option {key}={value!r} is not a valid {want}"
            ) from None
    return out


__all__ = [
    "FORMATS",
    "LOADERS",
    "RawData",
    "from_frame",
    "load",
    "load_csv",
    "load_lightgcn",
    "load_movielens",
    "load_parquet",
    "load_recbole",
    "load_retailrocket",
    "load_sequence",
    "load_taobao",
]
