"""Train / valid / test splits of a Dataset, and the named protocols that make them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tuijian.data.dataset import Dataset
from tuijian.errors import DataError


@dataclass(frozen=True, eq=False)
class Split:
    """Three datasets over one pair of vocabularies, and the protocol that produced them."""

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    protocol: dict[str, Any] = field(default_factory=dict)

    def parts(self) -> dict[str, Dataset]:
        out = {"train": self.train, "test": self.test}
        if self.valid is not None:
            out["valid"] = self.valid
        return out

    def save(self, path: str | Path) -> Path:
        """Write the split to a folder: vocabularies and features once, one table per part."""
        path = Path(path)
        self.train.save(path)
        (path / "interactions.parquet").rename(path / "train.parquet")
        self.test.interactions.write_parquet(path / "test.parquet")
        if self.valid is not None:
            self.valid.interactions.write_parquet(path / "valid.parquet")
        (path / "split.json").write_text(json.dumps(self.protocol, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Split:
        """Read a split folder written by `save` (what `tuijian data prepare` makes)."""
        path = Path(path)
        if not (path / "split.json").is_file():
            raise DataError(
                f"{path}: not a prepared data folder (no split.json); "
                "make one with `tuijian data prepare`"
            )
        protocol = json.loads((path / "split.json").read_text())
        base = Dataset.load_parts(path, "train.parquet")
        test = base.with_interactions(pl.read_parquet(path / "test.parquet"), name="test")
        valid = None
        if (path / "valid.parquet").is_file():
            valid = base.with_interactions(pl.read_parquet(path / "valid.parquet"), name="valid")
        train = base.with_interactions(base.interactions, name="train")
        return cls(train=train, test=test, valid=valid, protocol=protocol)
