"""The shared row-autoencoder pieces: row batches, the sparse first layer, normalisation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from tuijian.data import Dataset
from tuijian.models.autoencoder.base import (
    OutputLayer,
    SparseInput,
    l2_normalize,
    row_batch,
)
from tuijian.models.autoencoder.mult_vae import MultDAE

CPU = torch.device("cpu")
DENSE = np.array(
    [
        [0.0, 2.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 0.0],
        [3.0, 0.0, 4.0, 0.0],
    ],
    dtype=np.float32,
)


def test_row_batch_holds_the_rows_sparse_and_dense() -> None:
    batch = row_batch(sp.csr_matrix(DENSE), np.array([2, 0, 1]), CPU)
    assert batch.rows.tolist() == [2, 0, 1]
    assert batch.offsets.tolist() == [0, 2, 4]
    assert batch.row_of.tolist() == [0, 0, 1, 1]
    assert batch.cols.tolist() == [0, 2, 1, 3]
    assert batch.values.tolist() == [3.0, 4.0, 2.0, 1.0]
    np.testing.assert_array_equal(batch.dense.numpy(), DENSE[[2, 0, 1]])
    np.testing.assert_array_equal(batch.observed().numpy(), DENSE[[2, 0, 1]] > 0)
    assert row_batch(sp.csr_matrix(DENSE), np.array([0]), CPU, dense=False).dense is None


def test_sparse_input_equals_dense_product() -> None:
    torch.manual_seed(0)
    layer = SparseInput(4, 3)
    torch.nn.init.normal_(layer.bias)
    batch = row_batch(sp.csr_matrix(DENSE), np.array([0, 1, 2]), CPU)
    expected = torch.from_numpy(DENSE) @ layer.weight + layer.bias  # empty row -> bias only
    torch.testing.assert_close(layer(batch, batch.values), expected)


def test_l2_normalize_divides_rows_by_their_norm() -> None:
    batch = row_batch(sp.csr_matrix(DENSE), np.array([0, 2]), CPU)
    norm = np.sqrt(5.0)
    np.testing.assert_allclose(
        l2_normalize(batch).numpy(), [2 / norm, 1 / norm, 3 / 5, 4 / 5], rtol=1e-6
    )


def test_output_layer_on_a_column_subset_matches_full_columns() -> None:
    torch.manual_seed(0)
    layer = OutputLayer(3, 5)
    torch.nn.init.normal_(layer.bias)
    h = torch.randn(2, 3)
    cols = torch.tensor([4, 0, 2])
    torch.testing.assert_close(layer(h, cols), layer(h)[:, cols])


def test_an_epoch_visits_every_nonempty_row_once(tiny_dataset: Dataset) -> None:
    model = MultDAE(batch_size=4, epochs=1, hidden_sizes=(4,), latent_size=2).fit(tiny_dataset)
    batches = list(model.batches(tiny_dataset, np.random.default_rng(1)))
    assert [len(b) for b in batches] == [4, 2]
    rows = torch.cat([b.rows for b in batches]).numpy()
    assert sorted(rows.tolist()) == list(range(6))
    for b in batches:
        np.testing.assert_array_equal(b.dense.numpy(), model.seen_[b.rows.numpy()].toarray())


def test_rows_without_entries_are_never_drawn(tiny_dataset: Dataset) -> None:
    model = MultDAE(batch_size=2, epochs=1, hidden_sizes=(4,), latent_size=2).fit(tiny_dataset)
    model.seen_ = sp.csr_matrix(DENSE > 0, dtype=np.float32)
    batches = list(model.batches(tiny_dataset, np.random.default_rng(0)))
    assert sorted(torch.cat([b.rows for b in batches]).tolist()) == [0, 2]
