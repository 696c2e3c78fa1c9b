"""Command options and TOML config files for the `tuijian` command line.

Each command has one pydantic model of its options. A config file holds one TOML table per
command, named like the command (`[train]`, `[data.prepare]`), whose keys are the command's long
option names with `_` for `-` (`min_user_interactions`, `set`, `json`). The file is checked as a
whole when it is read, so a misspelt key fails before any work starts; flags given on the command
line win over the file. Relative paths in the file are taken from the file's folder.
"""

from __future__ import annotations

import ast
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from tuijian.errors import ConfigError, DataError

SplitName = Literal["random", "temporal", "user-temporal", "leave-last-out", "fixed", "users"]
Scale = Literal["tiny", "small", "1m"]


# ---- value parsing ----------------------------------------------------------------------------
def parse_literal(text: str) -> Any:
    """A command-line string as a Python value: JSON or a Python literal when it reads as one,
    None for `none` / `null`, else the string itself."""
    stripped = text.strip()
    if stripped.lower() in ("none", "null"):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def coerce(value: Any, annotation: Any) -> Any:
    """`value` converted to `annotation` when it is a string: tried as given ("0.1" -> 0.1,
    "true" -> True), then parsed as a literal ("[64, 32]"), then split at commas ("a,b").

    When nothing fits, the literal is returned so the caller's own validation names the problem.
    """
    if not isinstance(value, str):
        return value
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    literal = parse_literal(value)
    candidates: list[Any] = [value, literal]
    if "," in value:
        candidates.append([part.strip() for part in value.split(",")])
    for candidate in candidates:
        try:
            return adapter.validate_python(candidate)
        except ValidationError:
            continue
    return literal


def parse_assignments(items: Iterable[str], flag: str) -> dict[str, str]:
    """`["key=value", ...]` as a dict (values stay strings); an item without `=` is an error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _split_list(value: Any) -> Any:
    """A comma-separated string ("10,20") as a list; other values unchanged."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int | float):
        return [value]
    return value


def _assignments(value: Any, flag: str) -> Any:
    """Repeated `key=value` flags, or one comma-separated string of them, as a dict."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        return parse_assignments(value, flag)
    return value


# ---- one model per command --------------------------------------------------------------------
class CommandOptions(BaseModel):
    """Base of the option models: frozen, unknown keys rejected, keys by flag name."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class QuickstartOptions(CommandOptions):
    """`tuijian quickstart`: where to write the prepared data and the models."""

    out: Path | None = None
    scale: Scale = "small"  # hidden flag: the tests run the quickstart on the tiny shop


class SynthOptions(CommandOptions):
    """`tuijian data synth`: the synthetic shop, prepared and split 8:1:1."""

    out: Path | None = None
    scale: Scale = "small"
    seed: int = 0


class PrepareOptions(CommandOptions):
    """`tuijian data prepare`: preparation, split protocol and source options."""

    out: Path | None = None
    min_user_interactions: int = Field(0, ge=0)
    min_item_interactions: int = Field(0, ge=0)
    rating_threshold: float | None = None
    event_weights: dict[str, float] | None = None
    default_event_weight: float | None = Field(None, ge=0)
    split: SplitName | None = None
    ratios: list[float] = [0.8, 0.1, 0.1]
    seed: int = 0
    unseen: Literal["drop", "keep"] = "drop"
    query_fraction: float = Field(0.8, gt=0, lt=1)
    query_order: Literal["random", "time"] = "random"
    item_features: list[str] | None = None
    user_features: list[str] | None = None
    items: Path | None = None
    users: Path | None = None
    options: dict[str, Any] = Field(default_factory=dict, alias="option")

    @field_validator("ratios", mode="before")
    @classmethod
    def _ratios(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("item_features", "user_features", mode="before")
    @classmethod
    def _features(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):  # repeated flags, each maybe "a,b"
            return [part for item in value for part in _split_list(item)]
        return _split_list(value)

    @field_validator("event_weights", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> Any:
        return _assignments(value, "--event-weights")

    @field_validator("options", mode="before")
    @classmethod
    def _options(cls, value: Any) -> Any:
        return parse_assignments(value, "--option") if isinstance(value, list | tuple) else value


RUN_FLAGS: Final = ("device", "threads", "max_seconds", "precision")
"""Options of the training run (the Trainer's settings, not the model's) on train / compare."""


class RunFlags(CommandOptions):
    """Commands that train: `run_settings` gives their run options (declared after the command's
    own, so config-file keys list in a natural order) as `Trainer` keyword arguments."""

    def run_settings(self) -> dict[str, Any]:
        """The run settings given (unset ones keep the Trainer's defaults)."""
        return {k: getattr(self, k) for k in RUN_FLAGS if getattr(self, k) is not None}


class TrainOptions(RunFlags):
    """`tuijian train`: prepared data, output folder, model parameters and run settings."""

    data: Path | None = None
    out: Path | None = None
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set")
    device: str | None = None
    threads: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    precision: Literal["fp32", "bf16"] | None = None

    @field_validator("overrides", mode="before")
    @classmethod
    def _overrides(cls, value: Any) -> Any:
        return parse_assignments(value, "--set") if isinstance(value, list | tuple) else value


class EvaluateOptions(CommandOptions):
    """`tuijian evaluate`: data, cut-offs, the part to score and an optional JSON file."""

    data: Path | None = None
    k: list[int] = [10, 20]
    part: Literal["test", "valid"] = "test"
    json_path: Path | None = Field(None, alias="json")

    @field_validator("k", mode="before")
    @classmethod
    def _ks(cls, value: Any) -> Any:
        return _split_list(value)


class CompareOptions(RunFlags):
    """`tuijian compare`: data, cut-offs, JSON file, per-model parameters and run settings."""

    data: Path | None = None
    k: list[int] = [10, 20]
    json_path: Path | None = Field(None, alias="json")
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="set")
    save: Path | None = None
    log_dir: Path | None = None
    device: str | None = None
    threads: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    precision: Literal["fp32", "bf16"] | None = None

    @field_validator("k", mode="before")
    @classmethod
    def _ks(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("overrides", mode="before")
    @classmethod
    def _overrides(cls, value: Any) -> Any:
        """`model.key=value` flags, or a TOML table `{ease = {l2 = 500}}`, as nested dicts."""
        if isinstance(value, list | tuple):
            value = parse_assignments(value, "--set")
        if not isinstance(value, Mapping):
            return value
        out: dict[str, dict[str, Any]] = {}
        for key, val in value.items():
            if isinstance(val, Mapping):
                out.setdefault(key, {}).update(val)
                continue
            model, sep, param = str(key).partition(".")
            if not sep or not model or not param:
                raise ValueError(f"expected model.key=value, got {key}={val}")
            out.setdefault(model, {})[param] = val
        return out


class RecommendOptions(CommandOptions):
    """`tuijian recommend`: users, items given now, list length, output form, data for titles."""

    user: list[str] = []
    item: list[str] = []
    k: int = Field(10, ge=1)
    json_out: bool = Field(False, alias="json")
    data: Path | None = None

    @field_validator("user", "item", mode="before")
    @classmethod
    def _users(cls, value: Any) -> Any:
        if isinstance(value, str | int):
            return [str(value)]
        return [str(v) for v in value] if isinstance(value, list | tuple) else value


SECTIONS: Final[dict[str, type[CommandOptions]]] = {
    "quickstart": QuickstartOptions,
    "data.prepare": PrepareOptions,
    "data.synth": SynthOptions,
    "train": TrainOptions,
    "evaluate": EvaluateOptions,
    "compare": CompareOptions,
    "recommend": RecommendOptions,
}
"""Config file table name -> the options of that command."""

_M = TypeVar("_M", bound=CommandOptions)


def option_keys(model: type[CommandOptions]) -> list[str]:
    """The keys a config table for `model` accepts (flag names with `_` for `-`)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def default(model: type[CommandOptions], name: str) -> str:
    """The default of one option as the command line spells it (for `--help`)."""
    value = model.model_fields[name].get_default(call_default_factory=True)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def by_name(model: type[CommandOptions], values: Mapping[str, Any]) -> dict[str, Any]:
    """Keys given by alias (`set`, `json`) renamed to field names."""
    names = {info.alias or name: name for name, info in model.model_fields.items()}
    return {names.get(key, key): value for key, value in values.items()}


def _first_error(exc: ValidationError, model: type[CommandOptions]) -> tuple[str, str, str]:
    """(field name, key as the user spells it, one-line message) of the first error."""
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else ""
    info = model.model_fields.get(name)
    key = (info.alias or name) if info else name
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] != "value_error" and "input" in err:
        message += f" (got {err['input']!r})"
    return name, key, message


# ---- config files -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FileConfig:
    """The validated tables of a config file: table name -> {field name: value} as written."""

    path: Path | None = None
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def values(self, section: str) -> dict[str, Any]:
        """The options the file sets for one command (empty when it has no such table)."""
        return dict(self.tables.get(section, {}))


def _tables(raw: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """Flatten `{data: {prepare: {...}}}` to `{"data.prepare": {...}}`; unknown tables raise."""
    out: dict[str, dict[str, Any]] = {}
    valid = ", ".join(f"[{name}]" for name in SECTIONS)
    for key, value in raw.items():
        if key == "data" and isinstance(value, dict):
            for sub, table in value.items():
                out[f"data.{sub}"] = table
        else:
            out[key] = value
    for name, table in out.items():
        if name not in SECTIONS:
            raise ConfigError(f"{path}: unknown table [{name}]; valid tables: {valid}")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {name} must be a table like [{name}], got {table!r}")
    return out


def load_config(path: str | Path) -> FileConfig:
    """Read and check a TOML config file; an unknown table or key lists the valid ones."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"config file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid utf-8 text ({exc.reason})") from None
    tables: dict[str, dict[str, Any]] = {}
    for section, table in _tables(raw, path).items():
        model = SECTIONS[section]
        keys = option_keys(model)
        unknown = sorted(set(table) - set(keys))
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(unknown)} in [{section}]; "
                f"valid keys: {', '.join(keys)}"
            )
        try:
            checked = model.model_validate(by_name(model, table))
        except ValidationError as exc:
            _, key, message = _first_error(exc, model)
            raise ConfigError(f"{path}: [{section}] {key}: {message}") from None
        values = {name: getattr(checked, name) for name in checked.model_fields_set}
        tables[section] = {
            name: path.parent / value
            if isinstance(value, Path) and not value.is_absolute()
            else value
            for name, value in values.items()
        }
    return FileConfig(path, tables)


def merge_options(model: type[_M], section: str, file: FileConfig, given: Mapping[str, Any]) -> _M:
    """The options of one command: defaults, overridden by the file, overridden by `given`
    (the flags typed on the command line, keyed by field name)."""
    values = {**file.values(section), **given}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        name, key, message = _first_error(exc, model)
        where = f"--{key.replace('_', '-')}" if name in given else f"{file.path} [{section}] {key}"
        raise ConfigError(f"{where}: {message}") from None
