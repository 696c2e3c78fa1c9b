"""Save and load fitted models: one folder per model, no pickles, explicit state fields.

A model folder holds:

    config.json       {"format", "model" (registry name), "config" (the model's settings)}
    users.parquet     the user vocabulary (external id <-> idx)
    items.parquet     the item vocabulary
    seen.npz          the binary users x items training matrix (`seen_`)
    state.json        the learned scalars by name, and the names of the saved arrays
    state.npz         the learned dense arrays, and a torch module's tensors as `module.<name>`
    sparse.<name>.npz each learned sparse matrix

What is saved is what the model's class declares in `state_fields` (see
`Recommender.learned_fields`): numpy arrays, scipy sparse matrices and JSON scalars, each under
its attribute name. Loading builds the model from its config, sets exactly those attributes
and never executes anything read from the folder.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from tuijian.data.vocabulary import Vocabulary
from tuijian.errors import ConfigError, DataError

if TYPE_CHECKING:
    from tuijian.models.base import Recommender

MODEL_FORMAT = "tuijian.model/2"
# The previous format saved every numpy / scipy attribute ending in `_` (no state.json) and
# packed the rating range into one array; it is still read.
LEGACY_FORMAT = "tuijian.model/1"
_LEGACY_PACKED = {"rating_stats_": ("rating_mean_", "rating_min_", "rating_max_")}
# Format 1 kept the training weights only where a model used them; elsewhere `seen_` stands in.
_LEGACY_FROM_SEEN = ("user_items_",)
SCALAR_TYPES = (bool, int, float, str, type(None))
_T = TypeVar("_T")
# What a truncated, empty or hand-edited file raises from json, numpy / zip, scipy and parquet.
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    zipfile.BadZipFile,
    pl.exceptions.PolarsError,
)


def corrupt(path: Path, reason: str) -> DataError:
    """The one error of a model folder that cannot be read back."""
    return DataError(f"model folder {path} is incomplete/corrupt: {reason}")


def read_part(path: Path, name: str, read: Callable[[Path], _T]) -> _T:
    """`read(path / name)`; a missing or unreadable file raises `corrupt` naming it."""
    file = path / name
    if not file.is_file():
        raise corrupt(path, f"{name} is missing")
    if file.stat().st_size == 0:
        raise corrupt(path, f"{name} is empty")
    try:
        return read(file)
    except _READ_ERRORS as err:
        message = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise corrupt(path, f"cannot read {name} ({message})") from None


def _json(file: Path) -> dict[str, Any]:
    value = json.loads(file.read_text())
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return value


def _npz(file: Path) -> dict[str, np.ndarray]:
    with np.load(file, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _sparse(file: Path) -> sp.csr_matrix:
    return sp.load_npz(file).tocsr()


def _vocabulary(file: Path) -> Vocabulary:
    return Vocabulary.from_frame(pl.read_parquet(file))


def split_state(
    owner: str, state: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, sp.csr_matrix], dict[str, Any]]:
    """Sort learned state into dense arrays, sparse matrices and JSON scalars.

    Raises TypeError naming the field for any other kind of value (a model bug, not bad data).
    """
    arrays: dict[str, np.ndarray] = {}
    sparse: dict[str, sp.csr_matrix] = {}
    scalars: dict[str, Any] = {}
    for key, value in state.items():
        if sp.issparse(value):
            sparse[key] = sp.csr_matrix(value)
        elif isinstance(value, np.ndarray):
            arrays[key] = value
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        elif isinstance(value, SCALAR_TYPES):
            scalars[key] = value
        else:
            raise TypeError(
                f"{owner}.{key}: cannot save a {type(value).__name__}; state fields hold numpy "
                "arrays, scipy sparse matrices or scalars (bool, int, float, str, None)"
            )
    return arrays, sparse, scalars


def save_model(model: Recommender, path: str | Path) -> Path:
    """Write a fitted model to the folder `path` (created; files of an earlier save replaced)."""
    model._check_fitted()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays, sparse, scalars = split_state(type(model).__name__, model._get_state())
    meta = {"format": MODEL_FORMAT, "model": model.name, "config": model.config.model_dump()}
    (path / "config.json").write_text(json.dumps(meta, indent=2))
    model.users_.to_frame().write_parquet(path / "users.parquet")
    model.items_.to_frame().write_parquet(path / "items.parquet")
    sp.save_npz(path / "seen.npz", model.seen_)
    np.savez(path / "state.npz", **arrays)
    for stale in path.glob("sparse.*.npz"):
        stale.unlink()
    for key, value in sparse.items():
        sp.save_npz(path / f"sparse.{key}.npz", value)
    manifest = {"scalars": scalars, "arrays": sorted(arrays), "sparse": sorted(sparse)}
    (path / "state.json").write_text(json.dumps(manifest, indent=2))
    return path


def read_meta(path: Path) -> dict[str, Any]:
    """The `config.json` of a saved model folder, with its format checked."""
    if not (path / "config.json").is_file():
        raise DataError(f"{path}: not a saved model folder (no config.json)")
    meta = read_part(path, "config.json", _json)
    fmt = meta.get("format")
    if fmt not in (MODEL_FORMAT, LEGACY_FORMAT):
        raise DataError(
            f"{path}: saved in format {fmt!r}; this version of tuijian reads {MODEL_FORMAT!r} "
            f"and {LEGACY_FORMAT!r}: fit and save the model again"
        )
    if not isinstance(meta.get("model"), str) or not isinstance(meta.get("config"), dict):
        raise corrupt(path, "config.json lacks the 'model' name or the 'config' settings")
    return meta


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The dense arrays a model folder saved (learned arrays and `module.*` tensors)."""
    path = Path(path)
    if not (path / "state.npz").is_file() and not (path / "config.json").is_file():
        raise DataError(f"{path}: not a saved model folder (no state.npz)")
    return read_part(path, "state.npz", _npz)


def read_state(path: Path, fmt: str) -> dict[str, Any]:
    """Every saved learned value of a model folder by name (arrays, sparse, scalars)."""
    state: dict[str, Any] = read_arrays(path)
    if fmt == LEGACY_FORMAT:
        for p in path.glob("sparse.*.npz"):
            state[p.name[len("sparse.") : -len(".npz")]] = read_part(path, p.name, _sparse)
        for packed, names in _LEGACY_PACKED.items():
            if packed in state:
                state.update(zip(names, state.pop(packed).tolist(), strict=True))
        return state
    manifest = read_part(path, "state.json", _json)
    names, scalars = manifest.get("sparse"), manifest.get("scalars")
    if not isinstance(names, list) or not isinstance(scalars, dict):
        raise corrupt(path, "state.json lacks the 'sparse' names or the 'scalars'")
    for key in names:
        state[key] = read_part(path, f"sparse.{key}.npz", _sparse)
    state.update(scalars)
    return state


def load_model(path: str | Path, expected: type[Recommender] | None = None) -> Recommender:
    """Load a saved model folder; the registry picks the class named in `config.json`.

    Args:
        path: the folder written by `save_model`.
        expected: when given, the loaded model must be an instance of this class.
    """
    from tuijian.models.registry import get_model_class

    path = Path(path)
    meta = read_meta(path)
    model_cls = get_model_class(meta["model"])
    if expected is not None and not issubclass(model_cls, expected):
        raise ConfigError(f"{path} holds a {meta['model']!r} model, not {expected.__name__}")
    config = meta["config"]
    if meta["format"] == LEGACY_FORMAT:  # run settings of that format moved to the Trainer
        config = {k: v for k, v in config.items() if k in model_cls.config_class.model_fields}
    model = model_cls(**config)
    model.users_ = read_part(path, "users.parquet", _vocabulary)
    model.items_ = read_part(path, "items.parquet", _vocabulary)
    model.seen_ = read_part(path, "seen.npz", _sparse)
    if model.seen_.shape != (len(model.users_), len(model.items_)):
        raise corrupt(
            path,
            f"seen.npz is {model.seen_.shape[0]} x {model.seen_.shape[1]}, the vocabularies "
            f"{len(model.users_)} users x {len(model.items_)} items",
        )
    state = read_state(path, meta["format"])
    if meta["format"] == LEGACY_FORMAT:
        for name in _LEGACY_FROM_SEEN:
            state.setdefault(name, model.seen_.copy())
        if "precision" in meta["config"]:  # a model setting then, a run setting now
            state.setdefault("precision_", meta["config"]["precision"])
    for name, value in model_cls.older_state(config).items():
        state.setdefault(name, value)
    missing = [name for name in model_cls.learned_fields() if name not in state]
    if missing:
        raise DataError(
            f"{path}: no saved {', '.join(missing)} for {model_cls.__name__} (written by another "
            "version of tuijian): fit and save the model again"
        )
    model._set_state(state)
    return model
