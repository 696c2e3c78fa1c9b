"""Initialization from pre-trained weights: files, saved model folders or fitted models.

Sources are read into `PretrainedWeights` (named arrays plus, when known, the user and item
vocabularies their rows follow), then copied into a model's module by parameter name. Rows of
per-user / per-item tables are matched by external id, so weights learned on other data (or on
the same data with another vocabulary order) land on the right users and items. The tensor
copying itself is `tuijian.nn.init`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from tuijian.data.columns import Columns
from tuijian.data.vocabulary import Vocabulary
from tuijian.errors import ConfigError, DataError
from tuijian.models.io import read_arrays
from tuijian.nn.init import copy_arrays, match_names, module_tensors, resolve_tensor

RowKind = Literal["users", "items"]
MODULE_PREFIX = "module."  # how TorchRecommender stores its state_dict in state.npz


@dataclass(frozen=True)
class PretrainedWeights:
    """Named arrays, and the vocabularies that index the rows of per-user / per-item ones."""

    arrays: dict[str, np.ndarray]
    users: Vocabulary | None = None
    items: Vocabulary | None = None
    source: str = "arrays"

    @property
    def vocabularies(self) -> dict[str, Vocabulary]:
        """The known vocabularies by row kind ("users", "items")."""
        vocabs = {"users": self.users, "items": self.items}
        return {k: v for k, v in vocabs.items() if v is not None}


def read_pretrained(path: str | Path) -> PretrainedWeights:
    """Pre-trained weights from a saved model folder, an .npz or an .npy file.

    A model folder gives its torch parameters (without the `module.` prefix) and its other
    learned arrays (e.g. ALS `item_factors_`), with its user and item vocabularies. An .npz
    gives its arrays; arrays named `user_id` / `item_id` (external ids, text) are taken as the
    vocabularies of the rows. An .npy holds one array, named by the file name without `.npy`
    (`item_emb.weight.npy` fills `item_emb.weight`).
    """
    path = Path(path)
    if path.is_dir():
        arrays = {_strip(k): v for k, v in read_arrays(path).items()}
        return PretrainedWeights(
            arrays,
            users=_vocabulary(path / "users.parquet"),
            items=_vocabulary(path / "items.parquet"),
            source=str(path),
        )
    if not path.is_file():
        raise DataError(f"{path}: no such pre-trained weights file or model folder")
    if path.suffix == ".npy":
        return PretrainedWeights({path.name[: -len(".npy")]: np.load(path)}, source=str(path))
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        users = arrays.pop(Columns.user_id, None)
        items = arrays.pop(Columns.item_id, None)
        return PretrainedWeights(
            arrays,
            users=None if users is None else Vocabulary(users.tolist(), Columns.user_id),
            items=None if items is None else Vocabulary(items.tolist(), Columns.item_id),
            source=str(path),
        )
    raise DataError(f"{path}: pre-trained weights must be a model folder, .npz or .npy")


def weights_of(model: Any) -> PretrainedWeights:
    """The parameters of a fitted torch model (its `module_`) with its vocabularies."""
    if not hasattr(model, "module_"):
        raise ConfigError(f"{type(model).__name__} has no fitted module_ to copy from")
    arrays = {k: v.detach().cpu().numpy() for k, v in module_tensors(model.module_).items()}
    return PretrainedWeights(arrays, model.users_, model.items_, source=type(model).__name__)


def apply_pretrained(
    model: Any,
    source: str | Path | PretrainedWeights,
    mapping: Mapping[str, str] | None = None,
    rows: Mapping[str, RowKind] | None = None,
) -> list[str]:
    """Copy pre-trained weights into `model.module_` (a model whose vocabularies are set).

    Args:
        model: a torch recommender after `build_module` (has `module_`, `users_`, `items_`).
        source: a path (see `read_pretrained`) or weights already read.
        mapping: source name -> parameter name; None copies every name both have.
        rows: parameter name -> "users" / "items" for tables with one row per user / item:
            their rows are matched by external id (rows of ids the source lacks keep their
            initial values). Needed whenever the source has other vocabularies than the model.

    Returns the parameter names written.
    """
    weights = source if isinstance(source, PretrainedWeights) else read_pretrained(source)
    target = {"users": model.users_, "items": model.items_}
    differ = [k for k, v in weights.vocabularies.items() if v != target[k]]
    if differ and not rows:
        raise ConfigError(
            f"{weights.source}: its {' and '.join(differ)} differ from the model's; "
            "pass rows={parameter: 'users' | 'items'} to match rows by id"
        )
    aligned = dict(weights.arrays)
    pairs = match_names(model.module_, weights.arrays, mapping, weights.source)
    for src_name, dst_name in pairs.items():
        kind = (rows or {}).get(dst_name)
        if kind is None or kind not in weights.vocabularies:
            continue
        current = resolve_tensor(model.module_, dst_name).detach().cpu().numpy()
        aligned[src_name] = align_rows(
            weights.arrays[src_name], weights.vocabularies[kind], target[kind], current, src_name
        )
    return copy_arrays(model.module_, aligned, pairs, weights.source)


def init_from_model(
    model: Any,
    other: Any,
    mapping: Mapping[str, str] | None = None,
    rows: Mapping[str, RowKind] | None = None,
) -> list[str]:
    """Copy parameters of the fitted torch model `other` into `model` (NeuMF from GMF / MLP)."""
    return apply_pretrained(model, weights_of(other), mapping, rows)


def align_rows(
    array: np.ndarray, source: Vocabulary, target: Vocabulary, initial: np.ndarray, name: str
) -> np.ndarray:
    """Rows of `array` (ordered by `source` ids) moved to the `target` order.

    Target ids the source lacks keep their row of `initial`.
    """
    if array.shape[0] != len(source) or array.shape[1:] != initial.shape[1:]:
        raise ConfigError(
            f"pre-trained {name!r} has shape {array.shape}; expected ({len(source)}, "
            f"{', '.join(map(str, initial.shape[1:]))}) for {len(source)} {source.name} rows"
        )
    idx = source.lookup(pl.Series(target.ids.tolist(), dtype=pl.Utf8)).to_numpy()
    present = ~np.isnan(idx.astype(np.float64))
    if not present.any():
        raise ConfigError(f"pre-trained {name!r}: no {source.name} in common with the model")
    out = np.array(initial, copy=True)
    out[present] = array[idx[present].astype(np.int64)]
    return out


def _strip(key: str) -> str:
    return key[len(MODULE_PREFIX) :] if key.startswith(MODULE_PREFIX) else key


def _vocabulary(path: Path) -> Vocabulary | None:
    return Vocabulary.from_frame(pl.read_parquet(path)) if path.is_file() else None
