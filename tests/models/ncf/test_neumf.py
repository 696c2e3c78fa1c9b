"""GMF, MLP and NeuMF: fast scores equal the plain forward, losses by hand, batches, pre-training,
save/load, and quality on the synthetic shop."""

from __future__ import annotations

import functools
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
from tuijian.models.base import Recommender
from tuijian.models.ncf import GMF, NCFMLP, NeuMF
from tuijian.models.ncf.neumf import NCFNet
from tuijian.models.registry import get_model

SMALL = {"embedding_size": 6, "mlp_layers": (10, 4), "epochs": 3, "batch_size": 64}


def _random_net(gmf_size: int, mlp_size: int, layers: tuple[int, ...]) -> NCFNet:
    torch.manual_seed(0)
    net = NCFNet(7, 13, gmf_size, mlp_size, layers, dropout=0.3)
    for param in net.parameters():  # large weights so every unit and sign matters
        torch.nn.init.normal_(param, std=0.7)
    return net.eval()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize(("gmf", "mlp", "layers"), [(5, 0, ()), (0, 4, (6, 3)), (5, 4, (8, 6, 3))])
@pytest.mark.parametrize("chunk", [1, 5, 40, 4096])
def test_fast_scores_equal_the_plain_per_pair_forward(
    gmf: int, mlp: int, layers: tuple[int, ...], chunk: int
) -> None:
    net = _random_net(gmf, mlp, layers)
    users = torch.tensor([6, 0, 3, 3, 1])
    with torch.no_grad():
        plain = net(users, torch.arange(13).expand(len(users), -1))  # (5, 13)
        fast = net.score_block(users, net.item_side(), chunk)
        subset = torch.tensor([12, 0, 7])
        part = net.score_block(users, {k: v[subset] for k, v in net.item_side().items()}, chunk)
    np.testing.assert_allclose(fast.numpy(), plain.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(part.numpy(), plain[:, subset].numpy(), rtol=1e-5, atol=1e-5)


def test_plain_forward_is_the_paper_formula() -> None:
    net = _random_net(3, 2, (4, 2))
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    u, i = 2, 9
    gmf = sd["gmf_user.weight"][u] * sd["gmf_item.weight"][i]
    x = np.concatenate([sd["mlp_user.weight"][u], sd["mlp_item.weight"][i]])
    h = np.maximum(sd["tower.linears.0.weight"] @ x + sd["tower.linears.0.bias"], 0)
    h = np.maximum(sd["tower.linears.1.weight"] @ h + sd["tower.linears.1.bias"], 0)
    expected = sd["predict.weight"][0] @ np.concatenate([gmf, h]) + sd["predict.bias"][0]
    with torch.no_grad():
        got = net(torch.tensor([u]), torch.tensor([[i]])).item()
    assert got == pytest.approx(float(expected), rel=1e-5)


def test_gmf_scores_are_one_matmul() -> None:
    data = contract.contract_dataset()
    model = GMF(embedding_size=4, epochs=2).fit(data)
    sd = {k: v.numpy() for k, v in model.module_.state_dict().items()}
    expected = (sd["gmf_user.weight"] * sd["predict.weight"][0]) @ sd["gmf_item.weight"].T
    expected += sd["predict.bias"][0]
    scores = contract.as_numpy(model.score(np.arange(data.n_users)))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_batches_cover_every_positive_once_with_true_negatives() -> None:
    data = contract.contract_dataset()
    model = NeuMF(**{**SMALL, "n_negatives": 3, "batch_size": 8})
    model.fit(data)
    batches = list(model.batches(data, np.random.default_rng(0)))
    users = np.concatenate([b[0].numpy() for b in batches])
    items = np.concatenate([b[1].numpy() for b in batches])  # (P, 1 + 3)
    assert items.shape == (data.n_interactions, 4)
    assert max(len(b[0]) for b in batches) == 2  # 8 pairs per batch = 2 positives x (1 + 3)
    seen = model.seen_.toarray() > 0
    pairs = sorted(zip(users.tolist(), items[:, 0].tolist(), strict=True))
    coo = model.seen_.tocoo()
    assert pairs == sorted(zip(coo.row.tolist(), coo.col.tolist(), strict=True))
    assert not seen[users[:, None], items[:, 1:]].any()


@pytest.mark.parametrize("loss", ["bce", "bpr"])
def test_loss_matches_the_formula(loss: str) -> None:
    data = contract.contract_dataset()
    model = NeuMF(**SMALL, loss=loss, n_negatives=2).fit(data)
    users = torch.tensor([0, 5, 11])
    items = torch.tensor([[1, 7, 8], [0, 9, 10], [6, 2, 3]])
    with torch.no_grad():
        logits = model.module_(users, items).numpy().astype(np.float64)
        got = model.compute_loss((users, items)).item()
    if loss == "bce":
        per_pair = np.concatenate(
            [np.log(_sigmoid(logits[:, :1])), np.log(1 - _sigmoid(logits[:, 1:]))], axis=1
        )
        expected = -per_pair.mean()
    else:
        expected = -np.mean(np.log(_sigmoid(logits[:, :1] - logits[:, 1:])))
    assert got == pytest.approx(expected, rel=1e-5)


@functools.cache
def _branches(tmp: Path) -> tuple[Path, Path]:
    data = contract.contract_dataset()
    gmf = GMF(embedding_size=6, epochs=5, lr=0.05).fit(data)
    mlp = NCFMLP(embedding_size=5, mlp_layers=(8, 4), epochs=5, lr=0.05).fit(data)
    return gmf.save(tmp / "gmf"), mlp.save(tmp / "mlp")


@pytest.fixture(scope="module")
def branches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _branches(tmp_path_factory.mktemp("ncf"))


@pytest.mark.parametrize("alpha", [0.5, 0.2])
def test_pretrained_neumf_starts_as_the_alpha_weighted_branches(
    branches: tuple[Path, Path], alpha: float
) -> None:
    data = contract.contract_dataset()
    gmf_path, mlp_path = branches
    gmf, mlp = Recommender.load(gmf_path), Recommender.load(mlp_path)
    model = NeuMF(
        embedding_size=6,
        mlp_embedding_size=5,
        mlp_layers=(8, 4),
        pretrained_gmf=str(gmf_path),
        pretrained_mlp=str(mlp_path),
        alpha=alpha,
        optimizer="sgd",
        momentum=0.0,
        lr=1e-12,  # one step that changes nothing: the weights are the initialisation
        epochs=1,
    ).fit(data)
    users = np.arange(data.n_users)
    combined = alpha * contract.all_scores(gmf, data) + (1 - alpha) * contract.all_scores(mlp, data)
    np.testing.assert_allclose(contract.all_scores(model, data), combined, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        model.module_.gmf_item.weight.detach().numpy(),
        gmf.module_.gmf_item.weight.detach().numpy(),
    )
    assert model.score(users).shape == (data.n_users, data.n_items)


def test_pretrained_rows_are_matched_by_external_id(tmp_path: Path) -> None:
    data = contract.contract_dataset()
    frame = data.external().select(Columns.user_id, Columns.item_id)
    # the branches see users in reverse order and never see u00 / u01
    part = frame.filter(~pl.col(Columns.user_id).is_in(["u00", "u01"])).sort(
        Columns.user_id, descending=True
    )
    other = build_dataset(part)
    gmf = GMF(embedding_size=4, epochs=1).fit(other)
    mlp = NCFMLP(embedding_size=3, mlp_layers=(4,), epochs=1).fit(other)
    model = NeuMF(
        embedding_size=4,
        mlp_embedding_size=3,
        mlp_layers=(4,),
        pretrained_gmf=str(gmf.save(tmp_path / "gmf")),
        pretrained_mlp=str(mlp.save(tmp_path / "mlp")),
        optimizer="sgd",
        momentum=0.0,
        lr=1e-12,
        epochs=1,
    ).fit(data)
    for user in ["u05", "u11"]:
        np.testing.assert_array_equal(
            model.module_.gmf_user.weight[data.users.index([user])[0]].detach().numpy(),
            gmf.module_.gmf_user.weight[other.users.index([user])[0]].detach().numpy(),
        )
    unseen = model.module_.gmf_user.weight[data.users.index(["u00"])[0]].detach().numpy()
    assert np.abs(unseen).max() < 0.1  # kept its N(0, 0.01) initialisation
    item = "i03"
    np.testing.assert_array_equal(
        model.module_.mlp_item.weight[data.items.index([item])[0]].detach().numpy(),
        mlp.module_.mlp_item.weight[other.items.index([item])[0]].detach().numpy(),
    )


def test_pretrained_branches_are_checked(branches: tuple[Path, Path]) -> None:
    data = contract.contract_dataset()
    gmf_path, mlp_path = branches
    base = {"embedding_size": 6, "mlp_embedding_size": 5, "epochs": 1}
    with pytest.raises(ConfigError, match="set both pretrained_gmf and pretrained_mlp"):
        NeuMF(pretrained_gmf=str(gmf_path))
    with pytest.raises(ConfigError, match=r"mlp_layers \[8, 4\], NeuMF has \[16, 4\]"):
        NeuMF(
            **base, mlp_layers=(16, 4), pretrained_gmf=str(gmf_path), pretrained_mlp=str(mlp_path)
        ).fit(data)
    with pytest.raises(ConfigError, match="holds a 'mlp' model, not 'gmf'"):
        NeuMF(**base, pretrained_gmf=str(mlp_path), pretrained_mlp=str(mlp_path)).fit(data)
    with pytest.raises(ConfigError, match="embedding_size 6, NeuMF needs 7"):
        NeuMF(
            **{**base, "embedding_size": 7},
            mlp_layers=(8, 4),
            pretrained_gmf=str(gmf_path),
            pretrained_mlp=str(mlp_path),
        ).fit(data)


def test_save_load_gives_identical_scores(tmp_path: Path) -> None:
    data = contract.contract_dataset()
    model = NeuMF(**SMALL, mlp_embedding_size=3).fit(data)
    loaded = Recommender.load(model.save(tmp_path / "neumf"))
    assert isinstance(loaded, NeuMF)
    assert loaded.config == model.config
    np.testing.assert_array_equal(
        contract.all_scores(loaded, data), contract.all_scores(model, data)
    )


def _test_ndcg(split: Split, name: str, **overrides: object) -> float:
    model = get_model(name, **overrides).fit(split.train, valid=split.valid)
    result = evaluate(model, split, ks=(10,), metrics=("ndcg",), beyond_accuracy=False)
    return result["ndcg@10"]


@pytest.mark.parametrize("name", ["gmf", "mlp", "neumf"])
def test_beats_popularity_on_the_synthetic_shop(shop_split: Split, name: str) -> None:
    config = {"embedding_size": 16, "epochs": 20, "patience": 3, "lr": 0.01, "batch_size": 512}
    if name != "gmf":
        config["mlp_layers"] = (32, 16)
    # measured: pop 0.132; gmf 0.323, mlp 0.285, neumf 0.327 (best valid epoch of 20)
    ndcg = _test_ndcg(shop_split, name, **config)
    assert ndcg > _test_ndcg(shop_split, "pop") + 0.1


def test_pair_logits_equal_the_plain_forward() -> None:
    """The fold-in's per-pair logits (from user vectors and item parts) are `forward`'s."""
    net = _random_net(5, 4, (8, 6, 3))
    users = torch.tensor([0, 3, 3, 6])
    items = torch.tensor([[1], [12], [0], [7]])
    with torch.no_grad():
        user = net.user_vectors(users)
        parts = {k: v[items[:, 0]] for k, v in net.item_side().items()}
        pairs = net.pair_logits(user, parts)
        plain = net(users, items)[:, 0]
    torch.testing.assert_close(pairs, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["gmf", "mlp", "neumf"])
def test_score_history_folds_in_a_training_history(name: str) -> None:
    """A training row given as a history ranks like its user; the fitted weights stay as
    they were. 30 epochs: the 60 contract pairs make one optimizer step per epoch, and the
    test_config's 10 leave the users near their random start (GMF top-3 overlap 0.78)."""
    data = contract.contract_dataset()
    model = contract.fit_tiny(name, data, epochs=30)
    before = {k: v.clone() for k, v in model.module_.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in model.module_.parameters()]
    # measured: gmf 0.94, mlp 1.00, neumf 0.89
    assert contract.check_score_history(model, data, min_overlap=0.85) > 0.85
    for key, value in model.module_.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    for param, grad in zip(model.module_.parameters(), grads, strict=True):
        assert (param.grad is None) == (grad is None)  # the fit's last gradients, untouched
        if grad is not None:
            torch.testing.assert_close(param.grad, grad, rtol=0, atol=0)


def test_a_history_of_every_item_keeps_the_mean_user() -> None:
    """No negative exists for a history holding the whole catalogue: its user vectors are
    the mean trained ones, and the block stays finite."""
    data = contract.contract_dataset()
    model = contract.fit_tiny("neumf", data)
    full = sp.csr_matrix(np.ones((1, data.n_items), dtype=np.float32))
    users = model.fold_in(sp.vstack([full, data.matrix[:1]]).tocsr())
    mean = model.module_.user_vectors(torch.arange(data.n_users))
    for key, table in mean.items():
        torch.testing.assert_close(users[key][0], table.mean(dim=0).detach())
        assert not torch.allclose(users[key][1], table.mean(dim=0).detach())
    assert torch.isfinite(model.score_history(full)).all()


@pytest.mark.parametrize(("name", "measured"), [("gmf", 0.378), ("mlp", 0.404), ("neumf", 0.353)])
def test_held_out_users_beat_popularity_on_the_synthetic_shop(name: str, measured: float) -> None:
    """Users left out of the fit, scored from their histories (test_config, pop 0.207)."""
    config = contract.tiny_config(name)
    ndcg, pop, overlap = contract.held_out_users_ndcg(name, source="shop", **config)
    assert ndcg > pop + 0.1, (ndcg, measured)
    assert overlap > 0.65  # top-10 of score vs score_history, fitted users: 0.83 / 0.73 / 0.77
