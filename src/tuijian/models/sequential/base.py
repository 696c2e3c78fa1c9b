"""What the sequence models share: padded sequences built once, whole-sequence batches, and
scoring of any session given at call time.

Each user's training interactions in time order (`Dataset.sequences`) are cut to their last
`max_len + 1` items and left-padded once, in `prepare_data`, into one (users, max_len + 1)
int64 matrix; an epoch is a permutation of its rows, `batch_size` whole sequences per batch,
and every position of every sequence is trained in one forward pass (inputs `[:, :-1]`,
targets `[:, 1:]`, padding ignored). Batches group sequences of similar length (shuffled
within equal lengths, batch order shuffled) and drop the columns that are padding in every
row: positions count from the newest item, so this changes no result, and most sequences
being short (Beauty: 7 items on average for a maximum of 50), it saves most of the work.
The padding index is `n_items` (BERT4Rec adds a mask token at `n_items + 1`).

A query's sequence is the known user's training sequence (unless `training_history=False`)
followed by the items given with the query, oldest first, cut to the last `max_len`; a bag of
items without order (a history matrix with no items given) is read in item-index order.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.errors import DataError
from tuijian.models.neural import TorchConfig, TorchRecommender
from tuijian.models.query import QueryBatch


class SequentialConfig(TorchConfig):
    """Sequence length, sizes and dropout shared by the sequence models; `batch_size` counts
    whole sequences (users), not positions."""

    max_len: int = Field(50, ge=1)
    hidden_size: int = Field(64, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(200, ge=1)
    patience: int = Field(10, ge=0)


SeqConfigT = TypeVar("SeqConfigT", bound=SequentialConfig)


def left_pad(indptr: np.ndarray, items: np.ndarray, width: int, pad: int) -> np.ndarray:
    """(R, width) int64: the last `width` items of each ragged row, right-aligned, `pad` before.

    Row r owns `items[indptr[r]:indptr[r + 1]]` (oldest first); vectorized over all rows.
    """
    lengths = np.diff(indptr)
    take = np.minimum(lengths, width)
    out = np.full((len(lengths), width), pad, dtype=np.int64)
    total = int(take.sum())
    if total == 0:
        return out
    row = np.repeat(np.arange(len(lengths)), take)
    start = np.cumsum(take) - take
    within = np.arange(total) - np.repeat(start, take)  # 0..take-1 inside each row
    src = np.repeat(indptr[1:] - take, take) + within
    out[row, width - take[row] + within] = items[src]
    return out


def item_frequencies(train: Dataset) -> np.ndarray:
    """Training events per item (float64), the sampling distribution of in-batch negatives."""
    items = train.interactions["item_idx"].to_numpy()
    return np.bincount(items, minlength=train.n_items).astype(np.float64)


class SequenceRecommender(TorchRecommender[SeqConfigT]):
    """A TorchRecommender over users' time-ordered item sequences.

    Subclasses build a module and implement `encode_last` ((Q, L) padded sequences -> (Q, D)
    states that score the next item against `output_items`) and `compute_loss`. History-native:
    a training user's sequence given as a query (in time order) scores exactly as the user.
    """

    history_mode = "native"
    reads_order: ClassVar[bool] = True  # scores depend on the order of the history
    state_fields: ClassVar[tuple[str, ...]] = ("user_seqs_",)
    module_: nn.Module
    train_seqs: np.ndarray  # (R, max_len + 1) padded training sequences, set by prepare_data
    train_lengths: np.ndarray  # (R,) items in each row of `train_seqs`

    @property
    def pad(self) -> int:
        """The padding index (one past the last item)."""
        return self.n_items

    def prepare_data(self, train: Dataset) -> None:
        """Pad every user's time-ordered training items once: `train_seqs` and `user_seqs_`."""
        indptr, items = train.sequences
        width = self.config.max_len
        self.user_seqs_ = left_pad(indptr, items, width, self.pad)  # (U, L) for scoring
        full = left_pad(indptr, items, width + 1, self.pad)  # (U, L + 1) inputs + targets
        lengths = np.diff(indptr)
        keep = lengths >= self.min_length()
        self.train_seqs = full[keep]
        self.train_lengths = np.minimum(lengths[keep], width + 1)
        if len(self.train_seqs) == 0:
            raise DataError(
                f"{train.name}: no user has {self.min_length()} or more interactions to train "
                f"{self.name or type(self).__name__} on"
            )

    def min_length(self) -> int:
        """Training sequences need this many items (an input and a target)."""
        return 2

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        """One epoch of whole padded sequences, `batch_size` a batch: a random permutation
        sorted by length (stable), cut into batches taken in random order; each batch keeps
        only the columns where some row has an item."""
        shuffled = rng.permutation(len(self.train_seqs))
        order = shuffled[np.argsort(self.train_lengths[shuffled], kind="stable")]
        size = self.config.batch_size
        starts = np.arange(0, len(order), size)
        for start in starts[rng.permutation(len(starts))]:
            rows = order[start : start + size]
            width = int(self.train_lengths[rows].max())
            batch = self.train_seqs[rows, -width:]
            yield torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)

    def n_batch_samples(self, batch: torch.Tensor) -> int:
        return int(batch.shape[0])

    # ---- scoring ---------------------------------------------------------------------------
    @abstractmethod
    def encode_last(self, seqs: torch.Tensor) -> torch.Tensor:
        """(Q, D) state after the last item of each left-padded (Q, L) sequence."""

    @abstractmethod
    def output_items(self, cols: torch.Tensor | None) -> torch.Tensor:
        """(I or len(cols), D) output vectors of the items: logits are state @ vectors.T."""

    def score_sequences(self, seqs: np.ndarray, item_idx: np.ndarray | None) -> torch.Tensor:
        """Next-item logits of padded (Q, L) sequences: (Q, n_items or len(item_idx))."""
        tensor = torch.from_numpy(np.ascontiguousarray(seqs, dtype=np.int64)).to(self.device)
        cols = None if item_idx is None else torch.from_numpy(np.asarray(item_idx, np.int64))
        with torch.no_grad():
            state = self.encode_last(tensor)  # (Q, D)
            vectors = self.output_items(None if cols is None else cols.to(self.device))
            return (state @ vectors.T).float().cpu()

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Next-item logits after each user's training sequence."""
        return self.score_sequences(self.user_seqs_[np.asarray(user_idx, np.int64)], item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Logits of histories without an order: each row's items read in index order."""
        rows = sp.csr_matrix(history)
        rows.sort_indices()
        seqs = left_pad(rows.indptr, rows.indices.astype(np.int64), self.config.max_len, self.pad)
        return self.score_sequences(seqs, item_idx)

    def query_sequences(self, queries: QueryBatch) -> np.ndarray:
        """(Q, L) padded sequences of a query batch: training sequence, then the given items.

        A known user's training sequence comes first where `queries.training` says so
        (`Query(training_history=True)`); queries with neither it nor given items (a bag given
        as a matrix) read their history in index order.
        """
        n = len(queries)
        given = queries.given
        given_len = np.diff(given.indptr)
        owner = np.repeat(np.arange(n), given_len)
        training = np.zeros(n, bool) if queries.training is None else queries.training
        with_train = (queries.user_idx >= 0) & training
        bag = ~with_train & (given_len == 0)
        rows = self.user_seqs_[queries.user_idx[with_train]]
        real = rows != self.pad
        sub = queries.history[bag]
        owners = np.concatenate(
            [
                np.repeat(np.flatnonzero(with_train), real.sum(axis=1)),
                owner,
                np.repeat(np.flatnonzero(bag), np.diff(sub.indptr)),
            ]
        )
        items = np.concatenate([rows[real], given.items, sub.indices.astype(np.int64)])
        order = np.argsort(owners, kind="stable")  # per query: training, given, bag
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(owners, minlength=n), out=indptr[1:])
        return left_pad(indptr, items[order], self.config.max_len, self.pad)

    def score_queries(
        self, queries: QueryBatch, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Logits after each query's sequence; empty queries get the popularity fallback."""
        empty = queries.empty
        out = self.score_sequences(self.query_sequences(queries), item_idx)
        if empty.any():
            pop = self.item_popularity_ if item_idx is None else self.item_popularity_[item_idx]
            out[torch.from_numpy(empty)] = torch.from_numpy(pop)
        return out
