"""Explanations on the synthetic shop: removing the top reason lowers the item's score, and the
top reason shares the item's category far more often than a random history item does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from tuijian.models.query import Query, QueryBatch
from tuijian.serving.engine import Served, _leave_one_out

N_USERS = 40
TOP = 3


def test_leave_one_out_drops_one_entry_per_row() -> None:
    row = sp.csr_matrix(np.array([[0, 2.0, 0, 3.0, 5.0]], dtype=np.float32))
    out = _leave_one_out(row, np.array([0, 2]))
    assert out.toarray().tolist() == [[0, 0, 0, 3, 5], [0, 2, 0, 3, 0]]


@pytest.mark.parametrize("name", ["itemknn", "ease", "als"])
def test_removing_the_top_reason_lowers_the_score(shop: Path, name: str) -> None:
    served = Served.load(shop / "models" / name)
    model, cats = served.model, served.catalogue.categories
    users = model.users_.ids[:N_USERS].tolist()
    lowered = shared = chance = cases = 0
    for user in users:
        (top,) = model.recommend([user], TOP)
        history = QueryBatch.build(model, [Query(user_id=user)]).history
        for item in top.ids.tolist():
            score, reasons, drops = served.explain(Query(user_id=user), item)
            assert len(reasons) == history.nnz and np.all(np.diff(drops) <= 1e-6)
            target = model.items_.index([item])
            without = history.copy()
            without[0, reasons[0]] = 0
            without.eliminate_zeros()
            after = float(np.asarray(model.score_history(without, target))[0, 0])
            lowered += after < score - 1e-6
            own = set(cats[item])
            hist_items = model.items_.id(history.indices).tolist()
            shared += bool(own & set(cats[model.items_.id(reasons[:1])[0]]))
            chance += np.mean([bool(own & set(cats[i])) for i in hist_items])
            cases += 1
    assert lowered / cases >= 0.9, (name, lowered, cases)
    # The top reason shares the item's category far more often than a random history item:
    # it closes at least a third of the gap between that chance rate and always.
    rate, base = shared / cases, chance / cases
    assert rate >= base + (1 - base) / 3, (name, rate, base)


def test_a_user_without_history_is_explained_by_popularity(shop: Path) -> None:
    served = Served.load(shop / "models" / "itemknn")
    score, reasons, _ = served.explain(Query(user_id=None), "i003")
    assert len(reasons) == 0 and score == served.model.item_popularity_[3]


def test_a_sequence_model_is_explained_by_the_steps_of_its_session(shop: Path) -> None:
    """SASRec: each reason is a step of the ordered session; leaving the top one out of the
    sequence (order kept) lowers the item's score by exactly its reported loss."""
    served = Served.load(shop / "models" / "sasrec")
    model = served.model
    session = model.items_.ids[[5, 17, 42, 5, 88]].tolist()
    query = Query(items=session)
    (top,) = model.recommend([query], 3)
    for item in top.ids.tolist():
        score, reasons, drops = served.explain(query, item)
        assert sorted(model.items_.id(reasons).tolist()) == sorted(set(session))
        assert np.all(np.diff(drops) <= 1e-6)
        first = model.items_.id(reasons[:1])[0]
        steps = [i for i in session if i != first] if session.count(first) == 1 else None
        if steps is not None:
            (without,) = model.recommend([Query(items=steps, candidates=[item])], 1)
            assert without.scores[0] == pytest.approx(score - drops[0], abs=1e-4)
