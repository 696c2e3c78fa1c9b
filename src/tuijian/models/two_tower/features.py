"""Item and user side features for the towers: categories, text (TF-IDF or MiniLM sentence
embeddings, reduced by SVD), user columns.

Everything is turned into index or float arrays once per fit, aligned with the fitted
vocabularies, so the torch modules only gather rows. The text encoding is cached in memory by
a hash of the documents and settings: refits on the same catalogue (tuning, tests) encode once.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset
from tuijian.errors import DataError
from tuijian.models.classic.content import item_documents
from tuijian.nn import sentence

TextEncoder = Literal["tfidf", "minilm"]

C = Columns
_TEXT_CACHE: dict[str, np.ndarray] = {}
_TEXT_CACHE_SIZE = 8  # encodings kept (each is items x dims float32)


def _category_rows(dataset: Dataset) -> tuple[pl.DataFrame, list[str]]:
    """(item_idx, category name) rows of the catalogue's items, and the sorted names."""
    feats = dataset.item_features
    empty = pl.DataFrame(schema={C.item_idx: pl.Int64, "cat": pl.Utf8})
    if feats is None or C.categories not in feats.columns:
        return empty, []
    col = pl.col(C.categories)
    if not isinstance(feats.schema[C.categories], pl.List):
        col = col.cast(pl.Utf8).str.split("|")
    table = feats.select(
        dataset.items.lookup(feats[C.item_id]).alias(C.item_idx),
        col.cast(pl.List(pl.Utf8)).alias("cat"),
    ).drop_nulls(C.item_idx)
    exploded = table.explode("cat").drop_nulls("cat").unique(maintain_order=True)
    return exploded, exploded["cat"].unique().sort().to_list()


def category_names(dataset: Dataset) -> list[str]:
    """The category names of the catalogue's items, in the code order of `item_categories`."""
    return _category_rows(dataset)[1]


def item_categories(dataset: Dataset, max_per_item: int) -> tuple[np.ndarray, int]:
    """(I, K) int64 category indices per item, padded with the category count; and that count.

    Categories come from the `categories` list (or `|`-separated string) column of the item
    features; items without a row, or a dataset without the column, get padding only (K = 1).
    """
    exploded, names = _category_rows(dataset)
    n_cat = len(names)
    if n_cat == 0:
        return np.zeros((dataset.n_items, 1), dtype=np.int64), 0
    code = exploded["cat"].replace_strict(names, pl.Series(np.arange(n_cat)), return_dtype=pl.Int64)
    items = exploded[C.item_idx].to_numpy().astype(np.int64)
    order = np.argsort(items, kind="stable")
    items, codes = items[order], code.to_numpy()[order]
    starts = np.searchsorted(items, items, side="left")
    within = np.arange(len(items)) - starts
    keep = within < max_per_item
    width = int(min(max_per_item, within.max() + 1))
    out = np.full((dataset.n_items, width), n_cat, dtype=np.int64)
    out[items[keep], within[keep]] = codes[keep]
    return out, n_cat


def text_features(
    dataset: Dataset, dims: int, max_features: int = 20_000, encoder: TextEncoder = "tfidf"
) -> np.ndarray:
    """(I, d) float32 text features of each item's title, text and categories: TF-IDF, or the
    packaged MiniLM's sentence embeddings (`encoder="minilm"`, the `text` extra), reduced to
    d = at most `dims` components by truncated SVD (for MiniLM, of the centred embeddings).

    Columns are scaled to unit variance over items, rows of items without text are zero; d is
    fewer than `dims` when the vocabulary (or embedding) is smaller. No item text: (I, 0).
    """
    try:
        docs = item_documents(dataset.item_features, dataset)
    except DataError:
        return np.zeros((dataset.n_items, 0), dtype=np.float32)
    key = hashlib.sha256(
        "\x1f".join([encoder, str(dims), str(max_features), *docs]).encode("utf-8")
    ).hexdigest()
    if key in _TEXT_CACHE:
        return _TEXT_CACHE[key].copy()
    # Imported here: scikit-learn takes a second to import and only text features need it.
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    if encoder == "minilm":
        vectors = sentence.encode(docs)
        has_text = np.array([bool(doc.strip()) for doc in docs])
        if not has_text.any():
            return np.zeros((dataset.n_items, 0), dtype=np.float32)
        vectors[has_text] -= vectors[has_text].mean(axis=0)
        matrix = vectors
    else:
        vectorizer = TfidfVectorizer(max_features=max_features, sublinear_tf=True, dtype=np.float32)
        try:
            matrix = vectorizer.fit_transform(docs)
        except ValueError:  # every document empty
            return np.zeros((dataset.n_items, 0), dtype=np.float32)
    k = min(dims, matrix.shape[1] - 1, matrix.shape[0] - 1)
    if k < 1:
        return np.zeros((dataset.n_items, 0), dtype=np.float32)
    svd = TruncatedSVD(n_components=k, random_state=0, algorithm="arpack")
    dense = svd.fit_transform(matrix).astype(np.float32)  # (I, k)
    scale = dense.std(axis=0)
    dense /= np.where(scale > 0, scale, 1.0)
    if len(_TEXT_CACHE) >= _TEXT_CACHE_SIZE:
        _TEXT_CACHE.pop(next(iter(_TEXT_CACHE)))
    _TEXT_CACHE[key] = dense
    return dense.copy()


def text_tokens(dataset: Dataset, max_features: int) -> sp.csr_matrix:
    """(I, V) float32 CSR: each item's TF-IDF weights over the `max_features` most frequent
    words of the catalogue's text (rows L2-normalized; empty rows without text), so the item
    tower can learn one embedding per word, shared by warm and cold items (LightFM-style).
    No item text: (I, 0)."""
    try:
        docs = item_documents(dataset.item_features, dataset)
    except DataError:
        return sp.csr_matrix((dataset.n_items, 0), dtype=np.float32)
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(max_features=max_features, sublinear_tf=True, dtype=np.float32)
    try:
        tokens = vectorizer.fit_transform(docs).tocsr()
    except ValueError:  # every document empty
        return sp.csr_matrix((dataset.n_items, 0), dtype=np.float32)
    tokens.sort_indices()
    return tokens


def user_feature_codes(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(U, F) int64 codes of the categorical user feature columns (0 = unknown), and (F,)
    the number of codes per column (values + 1). No user features: (U, 0) and (0,)."""
    feats = dataset.user_features
    n_users = dataset.n_users
    if feats is None:
        return np.zeros((n_users, 0), dtype=np.int64), np.zeros(0, dtype=np.int64)
    columns = [
        c for c in feats.columns if c != C.user_id and feats.schema[c] in (pl.Utf8, pl.Categorical)
    ]
    rows = dataset.users.lookup(feats[C.user_id].cast(pl.Utf8)).fill_null(-1).to_numpy()
    known = rows >= 0
    rows = rows[known].astype(np.int64)
    codes = np.zeros((n_users, len(columns)), dtype=np.int64)
    sizes = np.zeros(len(columns), dtype=np.int64)
    for j, col in enumerate(columns):
        values = feats[col].cast(pl.Utf8).fill_null("")
        uniq, inverse = np.unique(np.asarray(values.to_list(), dtype=object), return_inverse=True)
        codes[rows, j] = inverse[known] + 1
        sizes[j] = len(uniq) + 1
    return codes, sizes


def pairs_with_events(
    dataset: Dataset, matrix: sp.csr_matrix, events: tuple[str, ...]
) -> np.ndarray:
    """(nnz,) bool in `matrix`'s CSR order: the (user, item) pairs of the dataset with at
    least one interaction whose event is in `events` (e.g. the bought pairs)."""
    inter = dataset.interactions
    if C.event not in inter.columns:
        raise DataError(f"{dataset.name}: {list(events)} need an {C.event!r} column")
    hits = inter.filter(pl.col(C.event).is_in(list(events)))
    if hits.height == 0:
        raise DataError(f"{dataset.name}: no interaction has an event in {list(events)}")
    n_items = matrix.shape[1]
    keys = np.unique(
        hits[C.user_idx].to_numpy().astype(np.int64) * n_items + hits[C.item_idx].to_numpy()
    )
    users = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    pair_keys = users * n_items + matrix.indices
    pos = np.minimum(np.searchsorted(keys, pair_keys), len(keys) - 1)
    return keys[pos] == pair_keys


def pair_events(dataset: Dataset, matrix: sp.csr_matrix) -> tuple[np.ndarray, list[str]]:
    """(nnz,) int8 event code of each pair of `matrix` (CSR order) and the sorted event names.

    A pair's event is its strongest (the event of its largest-weight row, the first among
    equals: what `prepare` keeps); a dataset without an event column is one behaviour, `""`.
    """
    inter = dataset.interactions
    if C.event not in inter.columns:
        return np.zeros(matrix.nnz, dtype=np.int8), [""]
    frame = inter.select(
        (pl.col(C.user_idx).cast(pl.Int64) * matrix.shape[1] + pl.col(C.item_idx)).alias("key"),
        pl.col(C.event).cast(pl.Utf8).fill_null(""),
        pl.col(C.weight) if C.weight in inter.columns else pl.lit(1.0).alias(C.weight),
    )
    names = frame[C.event].unique().sort().to_list()
    if len(names) > np.iinfo(np.int8).max:
        raise DataError(f"{dataset.name}: {len(names)} event types, at most 127 are typed")
    strongest = (
        frame.group_by("key").agg(pl.col(C.event).get(pl.col(C.weight).arg_max())).sort("key")
    )
    keys = strongest["key"].to_numpy()
    codes = strongest[C.event].replace_strict(
        names, pl.Series(np.arange(len(names))), return_dtype=pl.Int8
    )
    users = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    pos = np.searchsorted(keys, users * matrix.shape[1] + matrix.indices)
    return codes.to_numpy()[np.minimum(pos, len(keys) - 1)].astype(np.int8), names
