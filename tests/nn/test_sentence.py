"""The packaged MiniLM sentence encoder: meaning, empty texts, the disk cache by content hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tuijian.nn import sentence


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUIJIAN_CACHE_DIR", str(tmp_path))
    return tmp_path / "sentences"


def test_similar_texts_are_closer_and_empty_ones_are_zero(cache: Path) -> None:
    docs = ["red cotton t-shirt", "crimson cotton tee shirt", "stainless steel frying pan", " "]
    vectors = sentence.encode(docs)
    assert vectors.shape == (4, sentence.DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[3], 0.0)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_second_encoding_reads_the_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = ["wool socks", "a cast iron pot"]
    first = sentence.encode(docs)
    assert len(list(cache.glob("*.npy"))) == 1

    def no_model() -> None:
        raise AssertionError("encoded again")

    monkeypatch.setattr(sentence, "_encoder", no_model)
    np.testing.assert_array_equal(sentence.encode(docs), first)
    with pytest.raises(AssertionError, match="encoded again"):
        sentence.encode([*docs, "new text"])  # other documents: another key
