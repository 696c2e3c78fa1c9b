"""BERT4Rec: masked-item loss, the appended mask token, quality on the shop."""

from __future__ import annotations

import pytest
import torch

from tests.models.sequential.shop import fit_on_shop, popularity_ndcg, shop_ndcg
from tuijian.models.sequential import BERT4Rec


@pytest.fixture(scope="module")
def bert() -> BERT4Rec:
    model = fit_on_shop("bert4rec")
    assert isinstance(model, BERT4Rec)
    return model


def test_beats_popularity(bert: BERT4Rec) -> None:
    assert shop_ndcg(bert) > 1.2 * popularity_ndcg()  # measured 0.24 vs 0.16


def test_loss_reads_only_masked_real_positions(
    bert: BERT4Rec, monkeypatch: pytest.MonkeyPatch
) -> None:
    pad, mask = bert.pad, bert.mask_token
    inputs = {}
    forward = bert.module_.forward

    def spy(seqs: torch.Tensor) -> torch.Tensor:
        inputs["seqs"] = seqs.clone()
        return forward(seqs)

    monkeypatch.setattr(bert.module_, "forward", spy)
    batch = torch.tensor([[pad, pad, 3, 5, 7], [1, 2, 3, 4, 6]])
    torch.manual_seed(0)
    bert.compute_loss(batch)
    seqs = inputs["seqs"]
    assert (seqs[:, -1] == mask).all()  # the newest item is always hidden
    assert (seqs[0, :2] == pad).all()  # padding is never masked
    kept = seqs != mask
    assert torch.equal(seqs[kept], batch[:, -bert.config.max_len :][kept])


def test_recommendation_appends_a_mask_token(bert: BERT4Rec, monkeypatch) -> None:
    seen = {}
    forward = bert.module_.forward

    def spy(seqs: torch.Tensor) -> torch.Tensor:
        seen["seqs"] = seqs.clone()
        return forward(seqs)

    monkeypatch.setattr(bert.module_, "forward", spy)
    bert.score(torch.tensor([0]).numpy())
    row = seen["seqs"][0]
    assert row[-1] == bert.mask_token
    assert row[:-1].tolist() == bert.user_seqs_[0, 1:].tolist()
