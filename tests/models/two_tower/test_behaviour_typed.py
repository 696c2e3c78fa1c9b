"""Behaviour-typed two-tower: one history pool per event type, event-carrying queries, save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from tests.models import contract
from tuijian.data import Columns, Split, build_dataset
from tuijian.errors import ConfigError
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.io import load_model
from tuijian.models.query import Query, QueryBatch
from tuijian.models.registry import get_model
from tuijian.models.two_tower import TwoTower
from tuijian.models.two_tower.features import pair_events

C = Columns


@pytest.fixture(scope="module")
def typed(shop_split: Split) -> TwoTower:
    model = contract.make_model("twotower", behaviour_typed=True).fit(shop_split.train)
    assert isinstance(model, TwoTower)
    return model


def _scores(model: TwoTower, queries: list[Query]) -> np.ndarray:
    return model.score_queries(QueryBatch.build(model, queries)).numpy()


def test_pair_events_are_the_strongest_event_in_csr_order(shop_split: Split) -> None:
    train = shop_split.train
    matrix = sp.csr_matrix(train.matrix)
    matrix.sort_indices()
    codes, names = pair_events(train, matrix)
    assert names == ["buy", "cart", "view"]
    inter = train.interactions.sort(C.user_idx, C.item_idx)
    np.testing.assert_array_equal(np.array(names)[codes], inter[C.event].to_numpy())
    # one pair with two rows: the larger weight's event wins, whichever row comes first
    frame = pl.DataFrame(
        {
            C.user_id: ["a", "a", "a"],
            C.item_id: ["x", "x", "y"],
            C.weight: [1.0, 5.0, 3.0],
            C.event: ["view", "buy", "cart"],
        }
    )
    data = build_dataset(frame)
    codes, names = pair_events(data, sp.csr_matrix(data.matrix))
    assert names == ["buy", "cart", "view"]
    assert [names[c] for c in codes] == ["buy", "cart"]


def test_batches_carry_each_history_items_event(typed: TwoTower) -> None:
    batch = next(typed.batches(None, np.random.default_rng(0)))  # type: ignore[arg-type]
    matrix = typed.user_items_
    pairs = np.random.default_rng(0).permutation(matrix.nnz)[: typed.config.batch_size]
    users = typed.pair_user[pairs]
    owner = batch.hist_owner.numpy()
    items = np.stack([batch.hist_items.numpy(), batch.hist_event.numpy()], axis=1)
    for b in (0, 1, 2):
        row = slice(matrix.indptr[users[b]], matrix.indptr[users[b] + 1])
        truth = dict(
            zip(matrix.indices[row].tolist(), typed.user_events_[row].tolist(), strict=True)
        )
        mine = owner == b
        assert mine.sum() == len(truth) - 1
        assert all(truth[i] == e for i, e in items[mine].tolist())


def test_the_same_item_as_view_or_buy_fills_a_different_pool(typed: TwoTower) -> None:
    net = typed.module_
    names = typed.event_names_.tolist()
    buy, view = names.index("buy"), names.index("view")
    item = torch.tensor([3, 3])
    with torch.no_grad():
        pools = net.pools(item, torch.tensor([0, 1]), torch.ones(2), 2, torch.tensor([view, buy]))
    dim = typed.config.dim
    pools = pools.reshape(2, len(names), dim).numpy()
    assert np.abs(pools[0, view]).sum() > 0 and np.abs(pools[0, buy]).sum() == 0
    assert np.abs(pools[1, buy]).sum() > 0 and np.abs(pools[1, view]).sum() == 0
    # the item's vector plus each pool's behaviour vector
    np.testing.assert_allclose(
        pools[0, view] - pools[1, buy],
        (net.behaviour_emb.weight[view] - net.behaviour_emb.weight[buy]).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    items = typed.items_.id(np.array([3, 10, 20])).tolist()
    as_views, as_buys = _scores(
        typed,
        [Query(items=items, events=["view"] * 3), Query(items=items, events=["buy"] * 3)],
    )
    assert not np.allclose(as_views, as_buys)


def test_untyped_history_is_the_default_event(typed: TwoTower) -> None:
    """A plain weight history, or items given without events, count as the most frequent
    training event (view on the shop); a known user's training row keeps its own events."""
    assert typed.event_names_[typed.default_event_] == "view"
    items = typed.items_.id(np.array([1, 4, 9])).tolist()
    history = sp.csr_matrix(
        (np.ones(3, np.float32), ([0, 0, 0], [1, 4, 9])), shape=(1, typed.n_items)
    )
    plain = typed.score_history(history).numpy()
    np.testing.assert_allclose(_scores(typed, [Query(items=items)]), plain, rtol=1e-5)
    np.testing.assert_allclose(
        _scores(typed, [Query(items=items, events=["view"] * 3)]), plain, rtol=1e-5
    )
    np.testing.assert_allclose(  # an event unseen in training is the default too
        _scores(typed, [Query(items=items, events=["share"] * 3)]), plain, rtol=1e-5
    )


def test_a_known_users_row_given_anonymously_with_its_events(typed: TwoTower) -> None:
    """History-native with events: a training user's row given with each item's training
    event and weight is scored as the user (the shop model reads no user features)."""
    users = np.arange(5)
    own = typed.score(users).numpy()
    np.testing.assert_allclose(
        typed.score_queries(QueryBatch.for_users(typed, users)).numpy(), own, rtol=1e-6
    )
    names = typed.event_names_
    queries = []
    for u in users:
        row = slice(typed.user_items_.indptr[u], typed.user_items_.indptr[u + 1])
        queries.append(
            Query(
                items=typed.items_.id(typed.user_items_.indices[row]).tolist(),
                weights=typed.user_items_.data[row].tolist(),
                events=names[typed.user_events_[row]].tolist(),
            )
        )
    np.testing.assert_allclose(_scores(typed, queries), own, rtol=1e-4, atol=1e-5)
    known = typed.users_.id(users).tolist()
    fresh = _scores(typed, [Query(user_id=known[0], items=[typed.items_.ids[7]], events=["buy"])])
    assert not np.allclose(fresh[0], own[0])
    np.testing.assert_allclose(
        typed.query_vectors(QueryBatch.for_users(typed, users)) @ typed.item_vectors().T,
        own,
        rtol=1e-4,
        atol=1e-5,
    )


def test_save_load_gives_identical_scores(typed: TwoTower, tmp_path: Path) -> None:
    typed.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert isinstance(again, TwoTower)
    np.testing.assert_array_equal(again.user_events_, typed.user_events_)
    assert again.event_names_.tolist() == typed.event_names_.tolist()
    assert again.default_event_ == typed.default_event_
    users = np.arange(30)
    np.testing.assert_allclose(again.score(users).numpy(), typed.score(users).numpy(), rtol=1e-6)
    query = [Query(items=typed.items_.ids[:4].tolist(), events=["buy", "cart", "view", "buy"])]
    np.testing.assert_allclose(_scores(again, query), _scores(typed, query), rtol=1e-6)


def test_untyped_data_is_one_behaviour() -> None:
    """Training data without events: one pool, and any event given later is that one."""
    data = contract.contract_dataset()
    assert C.event not in data.interactions.columns
    model = contract.fit_tiny("twotower", data, behaviour_typed=True)
    assert isinstance(model, TwoTower)
    assert model.event_names_.tolist() == [""] and len(model.user_events_) == data.matrix.nnz
    items = model.items_.ids[:3].tolist()
    np.testing.assert_allclose(
        _scores(model, [Query(items=items, events=["buy"] * 3)]),
        _scores(model, [Query(items=items)]),
        rtol=1e-6,
    )


def test_beats_popularity_on_the_shop(typed: TwoTower, shop_split: Split) -> None:
    def ndcg(model: object) -> float:
        res = evaluate(model, shop_split, ks=(10,), metrics=("ndcg",), beyond_accuracy=False)  # type: ignore[arg-type]
        return res["ndcg@10"]

    pop = ndcg(get_model("pop").fit(shop_split.train))
    ours = ndcg(typed)
    assert ours > 1.5 * pop, (ours, pop)  # measured 0.290 vs 0.132


def test_gated_pooling_weighs_each_behaviour(shop_split: Split, tmp_path: Path) -> None:
    """`behaviour_pooling="gated"`: one pool, item + B[type] weighted by the interaction
    weight times softplus(gate[type]); the gates are learned and saved."""
    model = contract.make_model(
        "twotower", behaviour_typed=True, behaviour_pooling="gated", epochs=3
    ).fit(shop_split.train)
    assert isinstance(model, TwoTower)
    net = model.module_
    assert net.behaviour_gate is not None and net.behaviour_emb is not None
    gate = torch.nn.functional.softplus(net.behaviour_gate).detach()
    assert not torch.allclose(gate, torch.ones_like(gate))  # moved from its start, 1.0
    items, events = torch.tensor([2, 5, 9]), torch.tensor([0, 2, 2])
    weights = torch.tensor([5.0, 1.0, 1.0])
    with torch.no_grad():
        pooled = net.pools(items, torch.zeros(3, dtype=torch.long), weights, 1, events)
        vec = net.hist_emb(items) * net.warm[items] + net.content(items) + net.behaviour_emb(events)
        w = weights * gate[events]
        expected = (w[:, None] * vec).sum(0) / w.sum()
    np.testing.assert_allclose(pooled[0].numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "g")
    again = load_model(tmp_path / "g")
    users = np.arange(20)
    np.testing.assert_allclose(again.score(users).numpy(), model.score(users).numpy(), rtol=1e-6)


def test_untyped_module_has_no_behaviour_parameters(shop_split: Split) -> None:
    """Folders saved before behaviour typing hold exactly the untyped module's tensors."""
    model = contract.make_model("twotower", epochs=1).fit(shop_split.train)
    assert isinstance(model, TwoTower)
    names = set(model.module_.state_dict())
    assert not any(name.startswith("behaviour") for name in names)
    assert model.older_state({}).keys() == {"user_events_", "event_names_", "default_event_"}


def test_predict_event_heads(shop_split: Split) -> None:
    """`predict_event`: each training row is predicted by the head of its target's event,
    queries by the buy head; a head for an event the data lacks is a config error."""
    model = contract.make_model(
        "twotower", behaviour_typed=True, predict_event="buy", epochs=3
    ).fit(shop_split.train)
    assert isinstance(model, TwoTower)
    assert model.module_.n_heads == 3
    batch = next(model.batches(None, np.random.default_rng(0)))  # type: ignore[arg-type]
    pairs = np.random.default_rng(0).permutation(model.user_items_.nnz)[: model.config.batch_size]
    np.testing.assert_array_equal(batch.head.numpy(), model.user_events_[pairs])
    buy = model.event_names_.tolist().index("buy")
    with torch.no_grad():
        args = (batch.hist_items, batch.hist_owner, batch.hist_weight, batch.user_codes)
        n = len(batch.targets)
        as_buy = model.module_.users(*args, batch.hist_event, torch.full((n,), buy))
        view = torch.full((n,), model.event_names_.tolist().index("view"))
        as_view = model.module_.users(*args, batch.hist_event, view)
    assert not torch.allclose(as_buy, as_view)
    users = np.arange(10)
    vectors = model.query_vectors(QueryBatch.for_users(model, users))
    np.testing.assert_allclose(
        vectors @ model.item_vectors().T, model.score(users).numpy(), rtol=1e-4, atol=1e-5
    )
    with torch.no_grad():  # the buy head of the users' typed training rows
        history = model._training_history(users)
        pos, owner = np.arange(len(history.items)), np.repeat(users, np.diff(history.indptr))
        raw = model.module_.users(
            torch.from_numpy(history.items[pos].astype(np.int64)),
            torch.from_numpy(owner),
            torch.from_numpy(history.weights[pos]),
            torch.zeros((10, 0), dtype=torch.long),
            torch.from_numpy(history.events[pos]),
            torch.full((10,), buy),
        )
    np.testing.assert_allclose(
        vectors, torch.nn.functional.normalize(raw, dim=-1).numpy(), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ConfigError, match="predict_event"):
        contract.make_model("twotower", predict_event="buy", epochs=1).fit(shop_split.train)


def test_summed_pools_keep_the_item_space(shop_split: Split) -> None:
    """`behaviour_pooling="sum"`: each type's weighted mean times softplus(gate[type]),
    summed, with no projection; a user tower without features is that sum."""
    model = contract.make_model(
        "twotower", behaviour_typed=True, behaviour_pooling="sum", epochs=2
    ).fit(shop_split.train)
    assert isinstance(model, TwoTower)
    net = model.module_
    assert net.behaviour_gate is not None and net.behaviour_emb is None
    assert isinstance(net.tower, torch.nn.Identity)
    gate = torch.nn.functional.softplus(net.behaviour_gate).detach()
    items, events = torch.tensor([2, 5, 9]), torch.tensor([0, 2, 2])
    weights = torch.tensor([5.0, 1.0, 3.0])
    with torch.no_grad():
        pooled = net.pools(items, torch.zeros(3, dtype=torch.long), weights, 1, events)
        vec = net.hist_emb(items) * net.warm[items] + net.content(items)
        views = (weights[1:, None] * vec[1:]).sum(0) / weights[1:].sum()
        expected = gate[0] * vec[0] + gate[2] * views
    np.testing.assert_allclose(pooled[0].numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
