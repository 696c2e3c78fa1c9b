"""A damaged model folder ends in one `error: model folder X is incomplete/corrupt: ...` line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import fails, ok, run


@pytest.fixture(scope="module")
def pop_model(tiny_data: Path) -> Path:
    folder = tiny_data.parent / "pop-for-corruption"
    ok("train", "pop", "--data", tiny_data, "--out", folder)
    return folder


@pytest.mark.parametrize("how", ["empty", "truncated", "missing"])
@pytest.mark.parametrize("name", ["config.json", "state.npz", "seen.npz", "users.parquet"])
def test_recommend_from_a_damaged_folder(
    pop_model: Path, tmp_path: Path, name: str, how: str
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(pop_model, folder)
    file = folder / name
    if how == "missing":
        file.unlink()
    else:
        data = file.read_bytes()
        file.write_bytes(b"" if how == "empty" else data[: len(data) // 2])
    line = fails(run("recommend", folder, "--user", "u000"), str(folder))
    if name == "config.json" and how == "missing":
        assert "not a saved model folder" in line
    else:
        assert f"model folder {folder} is incomplete/corrupt:" in line
        assert name in line
