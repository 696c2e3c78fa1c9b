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
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    meta = json.loads((path / "config.json").read_text())
    fmt = meta.get("format")
    if fmt not in (MODEL_FORMAT, LEGACY_FORMAT):
        raise DataError(
            f"{path}: saved in format {fmt!r}; this version of tuijian reads {MODEL_FORMAT!r} "
            f"and {LEGACY_FORMAT!r}: fit and save the model again"
        )
    return meta


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The dense arrays a model folder saved (learned arrays and `module.*` tensors)."""
    path = Path(path)
    if not (path / "state.npz").is_file():
        raise DataError(f"{path}: not a saved model folder (no state.npz)")
    with np.load(path / "state.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def read_state(path: Path, fmt: str) -> dict[str, Any]:
    """Every saved learned value of a model folder by name (arrays, sparse, scalars)."""
    state: dict[str, Any] = read_arrays(path)
    if fmt == LEGACY_FORMAT:
        for p in path.glob("sparse.*.npz"):
            state[p.name[len("sparse.") : -len(".npz")]] = sp.load_npz(p).tocsr()
        for packed, names in _LEGACY_PACKED.items():
            if packed in state:
                state.update(zip(names, state.pop(packed).tolist(), strict=True))
        return state
    manifest = json.loads((path / "state.json").read_text())
    for key in manifest["sparse"]:
        state[key] = sp.load_npz(path / f"sparse.{key}.npz").tocsr()
    state.update(manifest["scalars"])
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
    model.users_ = Vocabulary.from_frame(pl.read_parquet(path / "users.parquet"))
    model.items_ = Vocabulary.from_frame(pl.read_parquet(path / "items.parquet"))
    model.seen_ = sp.load_npz(path / "seen.npz").tocsr()
    state = read_state(path, meta["format"])
    if meta["format"] == LEGACY_FORMAT:
        for name in _LEGACY_FROM_SEEN:
            state.setdefault(name, model.seen_.copy())
        if "precision" in meta["config"]:  # a model setting then, a run setting now
            state.setdefault("precision_", meta["config"]["precision"])
    missing = [name for name in model_cls.learned_fields() if name not in state]
    if missing:
        raise DataError(
            f"{path}: no saved {', '.join(missing)} for {model_cls.__name__} (written by another "
            "version of tuijian): fit and save the model again"
        )
    model._set_state(state)
    return model
