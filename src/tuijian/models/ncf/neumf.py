"""Neural Collaborative Filtering (He et al. 2017): GMF, MLP and NeuMF with pre-training.

One module holds both branches; GMF uses only the element-wise product branch, MLP only the
tower over concatenated embeddings, NeuMF both, joined by one prediction layer:

    gmf(u, i) = p_u * q_i                                   # (d,)
    mlp(u, i) = tower([p'_u; q'_i])                          # (h_L,)
    logit(u, i) = w . [gmf(u, i); mlp(u, i)] + b

Training is pointwise BCE on each positive and `n_negatives` sampled negatives (or BPR).
Full ranking is fast: the GMF part is one matmul, `u @ (Q * w_gmf).T`, and the tower's first
layer splits into a user half and an item half, `W1 [u; i] = W1u u + W1i i`, both computed once
per batch, so only the layers after the first run on every (user, item) pair, in bounded chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field, model_validator
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.errors import ConfigError
from tuijian.models.base import Recommender
from tuijian.models.fold_in import binary_history, history_rows, stratified_negatives
from tuijian.models.neural import TorchConfig, TorchRecommender
from tuijian.models.pretrained import init_from_model
from tuijian.models.registry import register
from tuijian.nn.losses import bce_loss, bpr_loss
from tuijian.nn.mlp import MLP
from tuijian.nn.sampling import NegativeSampler, positive_pairs

# (user, item) pairs pushed through the tower at once when scoring: PAIR_CHUNK x widest layer
# floats (4096 x 128 x 4 B = 2 MB) stay in a core's L2 cache; larger chunks measured 3x slower.
PAIR_CHUNK = 1 << 12
# Fold-in of a new history (see `_NCFRecommender.fold_in`): Adam steps and their lr, and the
# (user, item) pairs (positives and negatives) one chunk of queries holds per step. On the
# synthetic shop (test_config; GMF / NeuMF / MLP) 50 steps at lr 0.02 gave top-10 overlap with
# the fitted users by id 0.81 / 0.80 / 0.76 and held-out users NDCG@10 0.48 / 0.47 / 0.38
# (popularity 0.19); lr 0.05 0.74-0.78 / 0.38-0.46, 100 steps 0.80-0.81 / 0.46, 20 steps at
# lr 0.05 0.80 / 0.48 for GMF but 0.77 for NeuMF.
FOLD_STEPS = 50
FOLD_LR = 0.02
FOLD_PAIRS = 1 << 17


class NCFConfig(TorchConfig):
    """Settings shared by GMF, MLP and NeuMF.

    `batch_size` counts scored pairs (a positive and its negatives), as RecBole counts them.
    """

    embedding_size: int = Field(64, ge=1)
    n_negatives: int = Field(4, ge=1)
    loss: Literal["bce", "bpr"] = "bce"
    init_std: float = Field(0.01, gt=0)


class GMFConfig(NCFConfig):
    """Generalized matrix factorization: `embedding_size` factors per user and item."""


class MLPConfig(NCFConfig):
    """MLP over concatenated user and item embeddings (`embedding_size` each)."""

    mlp_layers: tuple[int, ...] = Field((128, 64), min_length=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    activation: Literal["relu", "tanh", "sigmoid", "gelu"] = "relu"


class NeuMFConfig(MLPConfig):
    """NeuMF: a GMF branch (`embedding_size`) and an MLP branch (`mlp_embedding_size`).

    With `pretrained_gmf` and `pretrained_mlp` (folders of saved `gmf` and `mlp` models) both
    branches start from those weights (embedding rows matched by external id; ids a branch
    lacks keep their random rows) and the prediction layer is `[alpha * w_gmf; (1 - alpha) *
    w_mlp]`; the paper then trains with plain SGD (`optimizer="sgd", momentum=0`).
    """

    mlp_embedding_size: int | None = Field(None, ge=1)
    pretrained_gmf: str | None = None
    pretrained_mlp: str | None = None
    alpha: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _both_or_no_pretrained(self) -> NeuMFConfig:
        if (self.pretrained_gmf is None) != (self.pretrained_mlp is None):
            raise ValueError("set both pretrained_gmf and pretrained_mlp, or neither")
        return self


class NCFNet(nn.Module):
    """Embeddings of the GMF and/or MLP branch, the MLP tower and the prediction layer.

    Args:
        n_users, n_items: vocabulary sizes.
        gmf_size: GMF embedding size (0: no GMF branch).
        mlp_size: MLP embedding size per side (0: no MLP branch).
        layers: the tower's layer sizes after the concatenated input of 2 * mlp_size.
        dropout, activation: of the tower.
        init_std: standard deviation of the Gaussian embedding initialisation.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        gmf_size: int,
        mlp_size: int,
        layers: tuple[int, ...] = (),
        dropout: float = 0.0,
        activation: str = "relu",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        self.gmf_size, self.mlp_size = gmf_size, mlp_size
        width = 0
        if gmf_size:
            self.gmf_user = nn.Embedding(n_users, gmf_size)
            self.gmf_item = nn.Embedding(n_items, gmf_size)
            width += gmf_size
        if mlp_size:
            self.mlp_user = nn.Embedding(n_users, mlp_size)
            self.mlp_item = nn.Embedding(n_items, mlp_size)
            self.tower = MLP([2 * mlp_size, *layers], dropout, activation)
            width += self.tower.output_size
        self.predict = nn.Linear(width, 1)
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=init_std)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits of every (users[b], items[b, j]) pair, the plain way: (B,), (B, J) -> (B, J)."""
        features = []
        if self.gmf_size:
            features.append(self.gmf_user(users)[:, None, :] * self.gmf_item(items))  # (B, J, d)
        if self.mlp_size:
            user = self.mlp_user(users)[:, None, :].expand(-1, items.shape[1], -1)  # (B, J, m)
            features.append(self.tower(torch.cat([user, self.mlp_item(items)], dim=-1)))
        return self.predict(torch.cat(features, dim=-1)).squeeze(-1)  # (B, J)

    def user_vectors(self, users: torch.Tensor) -> dict[str, torch.Tensor]:
        """The users' embeddings per branch: "gmf" (B, d), "mlp" (B, m) (`score_vectors` input)."""
        out = {}
        if self.gmf_size:
            out["gmf"] = self.gmf_user(users)
        if self.mlp_size:
            out["mlp"] = self.mlp_user(users)
        return out

    def item_side(self) -> dict[str, torch.Tensor]:
        """Per-item parts of the scores, computed once per set of weights (see `score_block`)."""
        out = {}
        if self.gmf_size:
            w_gmf = self.predict.weight[0, : self.gmf_size]
            out["gmf"] = self.gmf_item.weight * w_gmf  # (I, d)
        if self.mlp_size:
            first = self.tower.linears[0].weight  # (h1, 2m): [user half | item half]
            out["mlp"] = self.mlp_item.weight @ first[:, self.mlp_size :].T  # (I, h1)
        return out

    def score_block(
        self, users: torch.Tensor, items: dict[str, torch.Tensor], chunk: int = PAIR_CHUNK
    ) -> torch.Tensor:
        """Logits of every user against every item of `items` (from `item_side`): (B, I)."""
        return self.score_vectors(self.user_vectors(users), items, chunk)

    def score_vectors(
        self,
        user: dict[str, torch.Tensor],
        items: dict[str, torch.Tensor],
        chunk: int = PAIR_CHUNK,
    ) -> torch.Tensor:
        """Logits of every user vector (from `user_vectors`, or folded in) against every item
        of `items` (from `item_side`): (B, I)."""
        n_users = next(iter(user.values())).shape[0]
        n_items = next(iter(items.values())).shape[0]
        out = self.predict.bias.expand(n_users, n_items).clone()  # (B, I)
        if self.gmf_size:
            out.addmm_(user["gmf"], items["gmf"].T)
        if self.mlp_size:
            self._add_tower_scores(user["mlp"], items["mlp"], out, chunk)
        return out

    def pair_logits(
        self, user: dict[str, torch.Tensor], items: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Logits of the pairs (user[n], items[n]) from per-pair rows of `user_vectors` and
        `item_side` (eval mode: no dropout): (N,). Differentiable in the user vectors."""
        n_pairs = next(iter(user.values())).shape[0]
        out = self.predict.bias.expand(n_pairs)
        if self.gmf_size:
            out = out + (user["gmf"] * items["gmf"]).sum(dim=-1)
        if self.mlp_size:
            tower = self.tower
            first = tower.linears[0]
            h = user["mlp"] @ first.weight[:, : self.mlp_size].T + first.bias + items["mlp"]
            h = tower.activate(0, h)  # (N, h1)
            for k in range(1, len(tower.linears)):
                h = tower.activate(k, tower.linears[k](h))
            out = out + h @ self.predict.weight[0, self.gmf_size :]
        return out

    def _add_tower_scores(
        self, user: torch.Tensor, item_part: torch.Tensor, out: torch.Tensor, chunk: int
    ) -> None:
        """out[u, i] += w_mlp . tower(u, i) for every pair, `chunk` pairs at a time.

        The first layer is the broadcast sum of the user half and the precomputed item half;
        later layers write into buffers allocated once, so memory stays at chunk x width.
        """
        tower = self.tower
        first = tower.linears[0]
        user_part = user @ first.weight[:, : self.mlp_size].T + first.bias
        w_out = self.predict.weight[0, self.gmf_size :]  # (h_L,)
        n_users, n_items = out.shape
        cols = max(1, min(n_items, chunk))
        rows = max(1, chunk // cols)
        buffers = [out.new_empty(rows * cols, size) for size in tower.sizes[1:]]
        for r0 in range(0, n_users, rows):
            r1 = min(r0 + rows, n_users)
            for c0 in range(0, n_items, cols):
                c1 = min(c0 + cols, n_items)
                n = (r1 - r0) * (c1 - c0)
                h = buffers[0][:n].view(r1 - r0, c1 - c0, -1)  # (b, c, h1)
                torch.add(user_part[r0:r1, None, :], item_part[None, c0:c1], out=h)
                h = tower.activate_(0, h.view(n, -1))
                for k in range(1, len(tower.linears)):
                    layer = tower.linears[k]
                    h = torch.addmm(layer.bias, h, layer.weight.T, out=buffers[k][:n])
                    h = tower.activate_(k, h)  # (n, h_k)
                out[r0:r1, c0:c1] += (h @ w_out).view(r1 - r0, c1 - c0)


NCFConfigT = TypeVar("NCFConfigT", bound=NCFConfig)
# The MLP tower of a model: (layer sizes after the concatenated embeddings, dropout, activation).
Tower = tuple[tuple[int, ...], float, str]


class _NCFRecommender(TorchRecommender[NCFConfigT]):
    """Shared training and scoring of the three NCF models (they differ in branch sizes).

    A new history is folded in: its user embeddings are fitted by a few Adam steps on the
    model's loss over the history's items and negatives from outside it, the item side fixed.
    """

    history_mode = "fold_in"
    # Enough to learn the synthetic shop (the contract's history checks run there); 2 epochs
    # at lr 1e-3 left every NCF model below popularity even for users seen at fit.
    test_config: ClassVar[dict[str, Any]] = {
        "embedding_size": 8,
        "epochs": 10,
        "lr": 0.01,
        "batch_size": 512,
    }
    # Embedding tables whose rows follow the vocabularies: pre-trained rows are matched by id.
    pretrained_rows: ClassVar[dict[str, str] | None] = {
        "gmf_user.weight": "users",
        "gmf_item.weight": "items",
        "mlp_user.weight": "users",
        "mlp_item.weight": "items",
    }

    def _branch_sizes(self) -> tuple[int, int]:
        """(GMF embedding size, MLP embedding size); 0 turns a branch off."""
        raise NotImplementedError

    def _tower(self) -> Tower:
        """The MLP tower's settings; models without an MLP branch (GMF) have none."""
        return (), 0.0, "relu"

    def build_module(self) -> NCFNet:
        """The branches this model uses, sized from the fitted vocabularies."""
        gmf_size, mlp_size = self._branch_sizes()
        layers, dropout, activation = self._tower()
        n_users, n_items = len(self.users_), len(self.items_)
        return NCFNet(
            n_users, n_items, gmf_size, mlp_size, layers, dropout, activation, self.config.init_std
        )

    def prepare_data(self, train: Dataset) -> None:
        """A sampler of each user's negatives."""
        self._sampler = NegativeSampler(self.seen_)

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[Any]:
        """(users (B,), items (B, 1 + n_negatives)): column 0 is the positive."""
        cfg = self.config
        pairs_per_positive = cfg.n_negatives + (1 if cfg.loss == "bce" else 0)
        per_batch = max(1, cfg.batch_size // pairs_per_positive)
        all_users, all_items = positive_pairs(self.seen_, "pairs", rng)
        for start in range(0, len(all_users), per_batch):
            users = all_users[start : start + per_batch]
            negatives = self._sampler.sample(users, cfg.n_negatives, rng)  # (B, n)
            positives = all_items[start : start + per_batch, None]
            items = np.concatenate([positives, negatives], axis=1)
            yield torch.from_numpy(users).to(self.device), torch.from_numpy(items).to(self.device)

    def compute_loss(self, batch: Any) -> torch.Tensor:
        """The loss of the batch's positives and negatives (`pair_loss`)."""
        users, items = batch
        return self.pair_loss(self.module_(users, items))  # logits (B, 1 + n)

    def pair_loss(self, logits: torch.Tensor) -> torch.Tensor:
        """Of (B, 1 + n) logits, column 0 the positive: BCE (positive 1, negatives 0), or BPR
        of the positive against each negative; a mean over the batch."""
        if self.config.loss == "bpr":
            return bpr_loss(logits[:, :1], logits[:, 1:])
        labels = torch.zeros_like(logits)
        labels[:, 0] = 1.0
        return bce_loss(logits, labels)

    def invalidate_cache(self) -> None:
        """Drop the per-item parts of the scores (recomputed on the next `score`)."""
        self._item_cache: dict[str, torch.Tensor] | None = None

    def item_parts(self, item_idx: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """The per-item parts of the scores (`NCFNet.item_side`), cached, of all or some items."""
        self._check_fitted()
        if getattr(self, "_item_cache", None) is None:
            with torch.no_grad():
                self._item_cache = self.module_.item_side()
        items = self._item_cache
        assert items is not None
        if item_idx is not None:
            sel = torch.as_tensor(np.asarray(item_idx, dtype=np.int64), device=self.device)
            items = {key: value[sel] for key, value in items.items()}
        return items

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Logits (len(user_idx), n_items or len(item_idx)), by the chunked fast path."""
        items = self.item_parts(item_idx)
        users = torch.as_tensor(np.asarray(user_idx, dtype=np.int64), device=self.device)
        with torch.no_grad():
            return self.module_.score_block(users, items)

    def fold_in(self, history: sp.csr_matrix) -> dict[str, torch.Tensor]:
        """User vectors per branch (`NCFNet.user_vectors`, (Q, d)) of new histories.

        Each starts from the mean trained user vector and takes FOLD_STEPS Adam steps (lr
        FOLD_LR) on the model's own loss: the history's items (binarized, as `seen_` is) as
        positives, `n_negatives` per positive from the items outside it (`stratified_negatives`,
        offsets seeded by `config.seed`), items, tower and prediction layer fixed. The loss is
        a sum over queries, so each query's vector depends on its history alone.
        """
        binary = binary_history(history)
        module = self.module_
        device = self.device
        n_neg = self.config.n_negatives
        items = self.item_parts()
        with torch.no_grad():
            tables = module.user_vectors(torch.arange(len(self.users_), device=device))
            start = {key: table.mean(dim=0) for key, table in tables.items()}
        out = {key: v.expand(binary.shape[0], -1).clone() for key, v in start.items()}
        offsets = np.random.default_rng(self.config.seed).random(FOLD_STEPS)
        # Histories holding every item have no negative: they keep the mean vector.
        active = np.flatnonzero(np.diff(binary.indptr) < binary.shape[1])
        per_query = max(1, FOLD_PAIRS // (1 + n_neg))  # positives per chunk of queries
        indptr = binary[active].indptr
        lo = 0
        while lo < len(active):
            hi = int(np.searchsorted(indptr, indptr[lo] + per_query, side="right")) - 1
            hi = max(lo + 1, min(hi, len(active)))
            chunk = active[lo:hi]
            folded = self._fold_in_chunk(binary[chunk], start, items, offsets)
            rows = torch.as_tensor(chunk, device=device)
            for key, value in folded.items():
                out[key][rows] = value
            lo = hi
        return out

    def _fold_in_chunk(
        self,
        binary: sp.csr_matrix,
        start: dict[str, torch.Tensor],
        items: dict[str, torch.Tensor],
        offsets: np.ndarray,
    ) -> dict[str, torch.Tensor]:
        """`fold_in` of histories with a free item each: (Q, d) vectors per branch."""
        device = self.device
        n_neg = self.config.n_negatives
        counts = np.diff(binary.indptr)
        pos_of = torch.from_numpy(history_rows(binary)).to(device)  # (P,) query of each positive
        pos_items = torch.from_numpy(binary.indices.astype(np.int64)).to(device)
        # Negative t of the row-major draws belongs to positive t // n_neg: (P, n_neg) aligned.
        pair_rows = torch.cat([pos_of[:, None], pos_of[:, None].expand(-1, n_neg)], dim=1)
        params = {
            key: value.expand(binary.shape[0], -1).clone().requires_grad_(True)
            for key, value in start.items()
        }
        optimizer = torch.optim.Adam(list(params.values()), lr=FOLD_LR)
        for offset in offsets:
            _, negatives = stratified_negatives(binary, n_neg * counts, float(offset))
            neg_items = torch.from_numpy(negatives).to(device).view(-1, n_neg)  # (P, n_neg)
            cols = torch.cat([pos_items[:, None], neg_items], dim=1).reshape(-1)
            rows = pair_rows.reshape(-1)
            with torch.enable_grad():
                user = {key: value[rows] for key, value in params.items()}
                logits = self.module_.pair_logits(user, {k: v[cols] for k, v in items.items()})
                # A sum over positives: each query's gradient is its own history's.
                loss = self.pair_loss(logits.view(-1, 1 + n_neg)) * len(pos_items)
                grads = torch.autograd.grad(loss, list(params.values()))
            for param, grad in zip(params.values(), grads, strict=True):
                param.grad = grad
            optimizer.step()
        return {key: value.detach() for key, value in params.items()}

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Logits of folded-in user vectors (`fold_in`), by the fast path: (Q, items)."""
        user = self.fold_in(history)
        with torch.no_grad():
            return self.module_.score_vectors(user, self.item_parts(item_idx))


@register("gmf")
class GMF(_NCFRecommender[GMFConfig]):
    """Generalized matrix factorization: logit = w . (p_u * q_i) + b, trained with BCE."""

    def _branch_sizes(self) -> tuple[int, int]:
        return self.config.embedding_size, 0


@register("mlp")
class NCFMLP(_NCFRecommender[MLPConfig]):
    """NCF's MLP: an MLP tower over concatenated user and item embeddings."""

    test_config: ClassVar[dict[str, Any]] = {
        **_NCFRecommender.test_config,
        "mlp_layers": (16, 8),
        "epochs": 20,
    }

    def _branch_sizes(self) -> tuple[int, int]:
        return 0, self.config.embedding_size

    def _tower(self) -> Tower:
        cfg = self.config
        return cfg.mlp_layers, cfg.dropout, cfg.activation


@register("neumf")
class NeuMF(_NCFRecommender[NeuMFConfig]):
    """NeuMF: GMF and MLP branches with their own embeddings, fused in one prediction layer."""

    test_config: ClassVar[dict[str, Any]] = {**_NCFRecommender.test_config, "mlp_layers": (16, 8)}
    pretrained_kinds: ClassVar[dict[str, type[Recommender]]] = {
        "pretrained_gmf": GMF,
        "pretrained_mlp": NCFMLP,
    }

    def _branch_sizes(self) -> tuple[int, int]:
        cfg = self.config
        return cfg.embedding_size, cfg.mlp_embedding_size or cfg.embedding_size

    def _tower(self) -> Tower:
        cfg = self.config
        return cfg.mlp_layers, cfg.dropout, cfg.activation

    def prepare_data(self, train: Dataset) -> None:
        """Batches as for every NCF model, plus the pre-trained branches when configured."""
        super().prepare_data(train)
        cfg = self.config
        self._pretrained = (
            (
                self._load_branch("pretrained_gmf", cfg.pretrained_gmf),
                self._load_branch("pretrained_mlp", cfg.pretrained_mlp),
            )
            if cfg.pretrained_gmf and cfg.pretrained_mlp
            else None
        )

    def build_module(self) -> NCFNet:
        """A fresh module; during `fit` with pre-trained branches, initialised from them."""
        net = super().build_module()
        pretrained, self._pretrained = getattr(self, "_pretrained", None), None
        if pretrained is not None:
            gmf, mlp = pretrained
            self.module_ = net  # the models.pretrained helpers write into `module_`
            gmf_names = [k for k in gmf.module_.state_dict() if k.startswith("gmf_")]
            init_from_model(self, gmf, {k: k for k in gmf_names}, self.pretrained_rows)
            mlp_names = [k for k in mlp.module_.state_dict() if k.startswith(("mlp_", "tower."))]
            init_from_model(self, mlp, {k: k for k in mlp_names}, self.pretrained_rows)
            fuse_prediction_layers(net, gmf.module_, mlp.module_, self.config.alpha)
        return net

    def _load_branch(self, field: str, folder: str) -> _NCFRecommender:
        """Load the saved model `folder` (config `field`) and check it fits this NeuMF."""
        path = Path(folder)
        kind = self.pretrained_kinds[field]
        model = Recommender.load(path)
        if not isinstance(model, kind):
            raise ConfigError(f"{field}={path}: holds a {model.name!r} model, not {kind.name!r}")
        gmf_size, mlp_size = self._branch_sizes()
        want = gmf_size if kind is GMF else mlp_size
        if model.config.embedding_size != want:
            raise ConfigError(
                f"{field}={path}: embedding_size {model.config.embedding_size}, NeuMF needs {want}"
            )
        if kind is NCFMLP and tuple(model.config.mlp_layers) != self.config.mlp_layers:
            raise ConfigError(
                f"{field}={path}: mlp_layers {list(model.config.mlp_layers)}, "
                f"NeuMF has {list(self.config.mlp_layers)}"
            )
        return model  # type: ignore[return-value]


def fuse_prediction_layers(net: NCFNet, gmf: NCFNet, mlp: NCFNet, alpha: float) -> None:
    """NeuMF's prediction layer from a fitted GMF's and MLP's: [alpha w_gmf; (1-alpha) w_mlp].

    With the branches copied too, the NeuMF logit before any training is then
    alpha * GMF logit + (1 - alpha) * MLP logit (He et al. 2017, section 3.4.1).
    """
    with torch.no_grad():
        net.predict.weight.copy_(
            torch.cat([alpha * gmf.predict.weight, (1 - alpha) * mlp.predict.weight], dim=1)
        )
        net.predict.bias.copy_(alpha * gmf.predict.bias + (1 - alpha) * mlp.predict.bias)
