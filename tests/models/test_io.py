"""The saved model folder (`tuijian.models.io`): explicit state fields, JSON scalars, old format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from tests.models import contract
from tuijian.errors import DataError
from tuijian.models import io
from tuijian.models.base import Recommender


@pytest.fixture(scope="module")
def data():
    return contract.contract_dataset()


def test_scalars_are_named_json_values_not_packed_arrays(data, tmp_path: Path) -> None:
    model = contract.fit_tiny("biasedmf", data)
    folder = model.save(tmp_path / "mf")
    manifest = json.loads((folder / "state.json").read_text())
    low, high = float(data.matrix.data.min()), float(data.matrix.data.max())
    assert manifest["scalars"]["rating_min_"] == low == 1.0
    assert manifest["scalars"]["rating_max_"] == high == 2.0
    assert manifest["scalars"]["rating_mean_"] == pytest.approx(float(data.matrix.data.mean()))
    with np.load(folder / "state.npz") as npz:
        assert all(k.startswith("module.") for k in npz.files)  # no packed rating_stats_
    loaded = Recommender.load(folder)
    assert (loaded.rating_min_, loaded.rating_max_) == (low, high)
    pairs = np.arange(data.n_users), np.zeros(data.n_users, dtype=np.int64)
    np.testing.assert_array_equal(loaded.predict(*pairs), model.predict(*pairs))


def test_only_declared_fields_are_saved(data, tmp_path: Path) -> None:
    model = contract.fit_tiny("ease", data)
    model.scratch_ = np.ones(3)  # learned-looking, but not in state_fields
    folder = model.save(tmp_path / "ease")
    manifest = json.loads((folder / "state.json").read_text())
    assert manifest == {
        "scalars": {"l2_": 5.0},
        "arrays": ["item_weights_"],
        "sparse": ["user_items_"],
    }
    assert sorted(p.name for p in folder.glob("sparse.*")) == ["sparse.user_items_.npz"]
    assert not hasattr(Recommender.load(folder), "scratch_")


def test_a_value_that_cannot_be_saved_is_named(data, tmp_path: Path) -> None:
    model = contract.fit_tiny("pop", data)
    model.item_scores_ = [1.0, 2.0]  # a list is neither an array nor a scalar
    with pytest.raises(TypeError, match=r"MostPopular\.item_scores_: cannot save a list"):
        model.save(tmp_path / "pop")


def test_a_missing_field_and_an_unknown_format_are_clear_errors(data, tmp_path: Path) -> None:
    folder = contract.fit_tiny("ease", data).save(tmp_path / "ease")
    (folder / "state.json").write_text(json.dumps({"scalars": {}, "arrays": [], "sparse": []}))
    with pytest.raises(DataError, match="no saved user_items_ for EASE"):
        Recommender.load(folder)
    meta = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**meta, "format": "tuijian.model/0"}))
    with pytest.raises(DataError, match=r"format 'tuijian.model/0'; .* fit and save the model"):
        Recommender.load(folder)


def _as_legacy(folder: Path, with_weights: bool) -> None:
    """Rewrite a saved folder the way format 1 wrote it: no state.json, rating range packed,
    the training weights only where the model itself used them."""
    manifest = json.loads((folder / "state.json").read_text())
    (folder / "state.json").unlink()
    if not with_weights:
        (folder / "sparse.user_items_.npz").unlink()
    with np.load(folder / "state.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    scalars = manifest["scalars"]
    if scalars:
        names = ("rating_mean_", "rating_min_", "rating_max_")
        arrays["rating_stats_"] = np.array([scalars[k] for k in names], dtype=np.float32)
    np.savez(folder / "state.npz", **arrays)
    meta = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**meta, "format": io.LEGACY_FORMAT}))


@pytest.mark.parametrize("name", ["biasedmf", "autorec", "itemknn"])
def test_format_1_folders_still_load(name: str, data, tmp_path: Path) -> None:
    model = contract.fit_tiny(name, data)
    folder = model.save(tmp_path / name)
    _as_legacy(folder, with_weights=name == "itemknn")
    loaded = Recommender.load(folder)
    np.testing.assert_allclose(
        contract.all_scores(loaded, data), contract.all_scores(model, data), rtol=1e-6
    )
    if name != "itemknn":  # format 1 did not save the weights: the binary matrix stands in
        assert (loaded.user_items_ != model.seen_).nnz == 0
    for field in set(model.learned_fields()) - {"user_items_"}:
        value, restored = getattr(model, field), getattr(loaded, field)
        if sp.issparse(value):
            assert (value != restored).nnz == 0
        else:
            np.testing.assert_array_equal(restored, value)


def test_saving_again_replaces_stale_sparse_files(data, tmp_path: Path) -> None:
    folder = contract.fit_tiny("itemknn", data).save(tmp_path / "m")
    contract.fit_tiny("ease", data).save(folder)
    assert sorted(p.name for p in folder.glob("sparse.*")) == ["sparse.user_items_.npz"]
    assert type(Recommender.load(folder)).__name__ == "EASE"


CORRUPTIONS = {
    "empty": lambda file: file.write_bytes(b""),
    "truncated": lambda file: file.write_bytes(
        file.read_bytes()[: max(1, file.stat().st_size // 2)]
    ),
    "missing": lambda file: file.unlink(),
}


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
@pytest.mark.parametrize(
    "name",
    [
        "config.json",
        "state.json",
        "state.npz",
        "seen.npz",
        "users.parquet",
        "items.parquet",
        "sparse.user_items_.npz",
    ],
)
def test_a_damaged_file_is_one_corrupt_folder_error(
    data, tmp_path: Path, name: str, how: str
) -> None:
    folder = contract.fit_tiny("ease", data).save(tmp_path / "ease")
    CORRUPTIONS[how](folder / name)
    if name == "config.json" and how == "missing":
        match = "not a saved model folder"
    else:
        match = (
            rf"^model folder {re.escape(str(folder))} is incomplete/corrupt: .*{re.escape(name)}"
        )
    with pytest.raises(DataError, match=match) as caught:
        Recommender.load(folder)
    assert "\n" not in str(caught.value)


def test_vocabularies_that_do_not_fit_the_seen_matrix_are_corrupt(data, tmp_path: Path) -> None:
    folder = contract.fit_tiny("pop", data).save(tmp_path / "pop")
    users = pl.read_parquet(folder / "users.parquet")
    users.head(2).write_parquet(folder / "users.parquet")
    with pytest.raises(DataError, match=r"incomplete/corrupt: seen.npz is \d+ x \d+"):
        Recommender.load(folder)
