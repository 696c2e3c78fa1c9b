"""Two-tower retrieval after YouTube-DNN (Covington et al., RecSys 2016), hybrid with content.

    h     = sum_j w_j (H[j] + content(j)) / sum_j w_j   # (Q, D) pooled history, weights w
    u     = MLP([h, F_1[f_1], ..., F_k[f_k]])          # (Q, D) user tower, optional features
    h_b   = sum_{j in b} w_j (H[j] + content(j)) / sum_{j in b} w_j + B[b]  # behaviour_typed:
    u     = MLP([h_view, h_cart, ..., h_buy, F...])    # one pool per event type, concatenated
    v_i   = warm_i E[i] + Cat(cats_i) + W text_i       # (I, D) item tower: id + content
    score = <u / |u|, v_i / |v_i|> / temperature       # (normalize=True; else the plain dot)

The history weights are the summed interaction weights (event-type weights of `prepare`, e.g.
view 1, cart 3, buy 5) of the user's items; `content(j)` is the item tower's category and text
part, so an item nobody interacted with still counts in a history through its content. Training
takes every (user, item) pair of the training matrix once an epoch as a target, with the
user's other items as the history (the target is left out, as Covington's "predict the held-out
watch"), and a softmax over the batch's targets with logQ correction (each logit minus the log
of its item's expected count among the sampled columns; Yi et al. 2019), optionally mixed with
`n_uniform` items drawn uniformly (Yang et al. 2020, mixed negative sampling). With
`behaviour_typed`, each history item is pooled with the others of its event type (its
strongest event: view, cart, fav, buy...), so a view and a buy of the same item reach the
user tower through different inputs, with a learned behaviour vector B[b] marking a non-empty
pool (multi-behaviour: the behaviours are used jointly, not collapsed into one weight). A share
`id_dropout` of the sampled items is scored without its id embedding (DropoutNet, Volkovs et
al. 2017), so the content part alone learns to place an item: what cold items rely on.

Scoring is history-native: a user is their training history pooled, so any history given at
call time (fresh events, an anonymous session) is scored the same way with no refit; the
behaviour-typed tower reads the event of each item given with a query (`Query.events`; an item
without one, or a plain weight history, counts as the most frequent training event). Items
with no training interaction get no id embedding (`warm_i` = 0): cold items are ranked through
their categories and text. `item_vectors()` exports the item side for vector search.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from tuijian.data.dataset import Dataset
from tuijian.errors import ConfigError
from tuijian.models.neural import TorchConfig, TorchRecommender
from tuijian.models.query import QueryBatch
from tuijian.models.registry import register
from tuijian.models.two_tower.features import (
    TextEncoder,
    item_categories,
    pair_events,
    pairs_with_events,
    text_features,
    text_tokens,
    user_feature_codes,
)
from tuijian.models.vectors import DotProduct
from tuijian.nn.losses import in_batch_duplicates, sampled_softmax_loss
from tuijian.nn.mlp import MLP

# Score blocks of user vectors are built this many queries at a time.
USER_CHUNK = 4096
# How a behaviour-typed history is pooled: one pool per event type, concatenated; one pool per
# event type, summed with a learned weight each; or one pool with a learned weight per event
# type and a learned behaviour vector added to each item.
BehaviourPooling = Literal["concat", "sum", "gated"]


class TwoTowerConfig(TorchConfig):
    """Sizes of the towers, which content the item tower reads, and the sampled softmax.

    `user_layers` are the hidden widths of the user tower's ReLU MLP before its last linear
    layer to `dim` (empty and no user features: the pooled history is the user vector).
    `text_dim` is the number of SVD components of the items' text (0: no text), encoded by
    TF-IDF or, with `text_encoder="minilm"` (the `text` extra), by the packaged MiniLM
    sentence encoder: the fusion of what the text means with what users did;
    `text_tokens` > 0 also embeds each of that many most frequent words (an item adds its
    words' embeddings, by TF-IDF weight, as LightFM does with features): exact words such as
    an author's name reach cold items, which a few SVD components blur;
    `use_categories` / `use_user_features` switch those inputs. `max_history` caps the items
    pooled for one training example (a random subset; scoring pools everything);
    `id_dropout` is the share of sampled items trained on their content alone;
    `history_dropout` hides that share of each training history (denoising, as Mult-DAE's
    input dropout), against the memorisation of co-occurrences. `target_events` (e.g.
    `("buy",)`) trains only the pairs holding such an event as targets while histories keep
    every behaviour with its weight: multi-behaviour learning of buys from views and carts.
    `behaviour_typed` pools the history separately per event type (see the module docstring)
    and concatenates the pools into the user tower (a linear layer to `dim` at least, started
    as the sum of the pools); `behaviour_pooling="sum"` sums the pools, each times a learned
    weight (no projection: the pooled history stays in the item embeddings' space);
    `"gated"` keeps one pool, with a learned weight per event type and a learned behaviour
    vector added to its items.
    `predict_event` (e.g. `"buy"`, with `behaviour_typed`) gives the user tower's last layer
    one head per event type: each training pair is predicted by the head of its own event
    (behaviour as the label, every pair still a target) and queries are scored by the head of
    `predict_event`, so views and carts train the shared towers while the buy head ranks.
    """

    dim: int = Field(64, ge=1)
    user_layers: tuple[int, ...] = ()
    dropout: float = Field(0.0, ge=0, lt=1)
    use_categories: bool = True
    max_categories: int = Field(8, ge=1)
    text_dim: int = Field(32, ge=0)
    text_encoder: TextEncoder = "tfidf"
    text_tokens: int = Field(0, ge=0)  # words embedded one by one in the item tower (0: off)
    use_user_features: bool = True
    normalize: bool = True
    temperature: float = Field(0.1, gt=0)
    n_uniform: int = Field(0, ge=0)  # uniform negatives mixed with the in-batch ones
    log_q: bool = True
    max_history: int = Field(200, ge=1)
    id_dropout: float = Field(0.1, ge=0, le=1)  # share of sampled items scored by content only
    history_dropout: float = Field(0.0, ge=0, lt=1)  # share of history items hidden in training
    target_events: tuple[str, ...] | None = None  # train to predict only pairs with these events
    behaviour_typed: bool = False  # the history's event types reach the user tower
    behaviour_pooling: BehaviourPooling = "concat"  # how (with behaviour_typed)
    predict_event: str | None = None  # one user head per target event; score with this one's
    batch_size: int = Field(1024, ge=2)
    epochs: int = Field(30, ge=1)
    lr: float = Field(3e-3, gt=0)


class Examples(NamedTuple):
    """One training batch: B targets, their users' pooled histories (ragged) and negatives."""

    hist_items: torch.Tensor  # (N,) item indices of all histories, concatenated
    hist_owner: torch.Tensor  # (N,) row of the batch each history item belongs to
    hist_weight: torch.Tensor  # (N,) float32 interaction weights
    hist_event: torch.Tensor  # (N,) int64 event code of each history item (0 when untyped)
    user_codes: torch.Tensor  # (B, F) user feature codes
    targets: torch.Tensor  # (B,) positive item of each row
    uniform: torch.Tensor  # (M,) uniformly drawn negatives
    id_keep: torch.Tensor  # (B + M,) 1.0, or 0.0 where the item's id embedding is dropped
    head: torch.Tensor  # (B,) int64 user head of each row: its target's event (0: one head)


class TypedHistory(NamedTuple):
    """Ragged histories with an event code per item: query q owns `items[indptr[q]:...]`;
    an item may appear once per event type."""

    indptr: np.ndarray  # (Q + 1,) int64
    items: np.ndarray  # (N,) item indices
    weights: np.ndarray  # (N,) float32
    events: np.ndarray  # (N,) int64 event codes (indices into `event_names_`)


def owner_indptr(owner: np.ndarray, n: int) -> np.ndarray:
    """(n + 1,) int64 CSR row pointer of entries grouped by their (sorted) row `owner`."""
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(owner, minlength=n), out=indptr[1:])
    return indptr


class TwoTowerNet(nn.Module):
    """The user tower (pooled history + user features -> MLP) and the item tower (id +
    categories + text); both return (n, D) vectors."""

    def __init__(
        self,
        n_items: int,
        dim: int,
        item_cats: np.ndarray,
        n_categories: int,
        text: np.ndarray,
        tokens: sp.csr_matrix,
        warm: np.ndarray,
        feature_sizes: np.ndarray,
        user_layers: tuple[int, ...],
        dropout: float,
        n_behaviours: int = 0,
        pooling: BehaviourPooling = "concat",
        n_heads: int = 1,
    ) -> None:
        super().__init__()
        self.n_behaviours = n_behaviours  # 0: one pool of every behaviour (untyped)
        self.gated = bool(n_behaviours) and pooling == "gated"
        self.summed = bool(n_behaviours) and pooling == "sum"
        self.behaviour_emb: nn.Embedding | None = None
        if n_behaviours and not self.summed:
            self.behaviour_emb = nn.Embedding(n_behaviours, dim)
            nn.init.normal_(self.behaviour_emb.weight, std=0.1)
        self.behaviour_gate: nn.Parameter | None = None
        if self.gated or self.summed:  # softplus(gate[b]): type b's weight, 1 at the start
            self.behaviour_gate = nn.Parameter(torch.full((n_behaviours,), np.log(np.e - 1)))
        self.item_emb = nn.Embedding(n_items, dim)  # the item tower's id part (output side)
        self.hist_emb = nn.Embedding(n_items, dim)  # history input embedding (Covington)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        nn.init.normal_(self.hist_emb.weight, std=0.1)
        self.register_buffer("warm", torch.from_numpy(warm.astype(np.float32))[:, None], False)
        self.cat_emb: nn.EmbeddingBag | None = None
        if n_categories:
            self.cat_emb = nn.EmbeddingBag(
                n_categories + 1, dim, mode="mean", padding_idx=n_categories
            )
            nn.init.normal_(self.cat_emb.weight, std=0.1)
            with torch.no_grad():
                self.cat_emb.weight[n_categories].zero_()
            self.register_buffer("item_cats", torch.from_numpy(item_cats), False)
        self.text_proj: nn.Linear | None = None
        if text.shape[1]:
            self.text_proj = nn.Linear(text.shape[1], dim, bias=False)
            self.register_buffer("text", torch.from_numpy(text), False)
        self.token_emb: nn.EmbeddingBag | None = None
        if tokens.shape[1]:
            self.token_emb = nn.EmbeddingBag(tokens.shape[1], dim, mode="sum")
            nn.init.normal_(self.token_emb.weight, std=0.1)
            for name, values in (
                ("tok_indptr", tokens.indptr.astype(np.int64)),
                ("tok_words", tokens.indices.astype(np.int64)),
                ("tok_weight", tokens.data.astype(np.float32)),
            ):
                self.register_buffer(name, torch.from_numpy(values), False)
        offsets = np.concatenate([[0], np.cumsum(feature_sizes)[:-1]]).astype(np.int64)
        self.register_buffer("feature_offsets", torch.from_numpy(offsets), False)
        self.user_feat: nn.Embedding | None = None
        if len(feature_sizes):
            self.user_feat = nn.Embedding(int(feature_sizes.sum()), dim)
            nn.init.normal_(self.user_feat.weight, std=0.1)
        n_pools = 1 if self.gated or self.summed else max(n_behaviours, 1)
        width = dim * (n_pools + len(feature_sizes))
        self.tower: nn.Module = nn.Identity()
        self.n_heads = n_heads
        if user_layers or len(feature_sizes) or n_pools > 1 or n_heads > 1:
            hidden = MLP((width, *user_layers), dropout) if user_layers else nn.Identity()
            last = nn.Linear((width, *user_layers)[-1], dim * n_heads)
            if (n_pools > 1 or n_heads > 1) and not user_layers:  # start: sum of the pools
                with torch.no_grad():
                    eye = torch.eye(dim).repeat(n_heads, n_pools)  # (heads * D, pools * D)
                    last.weight[:, : n_pools * dim] = eye
                    last.bias.zero_()
            self.tower = nn.Sequential(hidden, last)

    def content(self, items: torch.Tensor) -> torch.Tensor | None:
        """(n, D) category + text part of the item tower, or None without content."""
        parts = []
        if self.cat_emb is not None:
            parts.append(self.cat_emb(self.item_cats[items]))
        if self.text_proj is not None:
            parts.append(self.text_proj(self.text[items]))
        if self.token_emb is not None:
            parts.append(self.words(items))
        if not parts:
            return None
        return torch.stack(parts).sum(dim=0) if len(parts) > 1 else parts[0]

    def words(self, items: torch.Tensor) -> torch.Tensor:
        """(n, D) TF-IDF-weighted sum of the items' word embeddings (their CSR rows)."""
        assert self.token_emb is not None
        starts, ends = self.tok_indptr[items], self.tok_indptr[items + 1]
        lengths = ends - starts
        offsets = torch.cumsum(lengths, 0) - lengths
        pos = torch.repeat_interleave(starts - offsets, lengths) + torch.arange(
            int(lengths.sum()), device=items.device
        )
        return self.token_emb(self.tok_words[pos], offsets, per_sample_weights=self.tok_weight[pos])

    def items(self, items: torch.Tensor, id_keep: torch.Tensor | None = None) -> torch.Tensor:
        """(n, D) item tower output of item indices (`id_keep`: (n,) 0/1 id dropout)."""
        keep = self.warm[items]
        has_content = any(m is not None for m in (self.cat_emb, self.text_proj, self.token_emb))
        if id_keep is not None and has_content:
            keep = keep * id_keep[:, None]  # id dropout only where content can stand in
        out = self.item_emb(items) * keep
        extra = self.content(items)
        return out if extra is None else out + extra

    def users(
        self,
        hist_items: torch.Tensor,
        hist_owner: torch.Tensor,
        hist_weight: torch.Tensor,
        user_codes: torch.Tensor,
        hist_event: torch.Tensor | None = None,
        head: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(Q, D) user tower output from ragged weighted histories (with their (N,) event
        codes when behaviour-typed), (Q, F) feature codes and, with heads, (Q,) head codes."""
        n = len(user_codes)
        pooled = self.pools(hist_items, hist_owner, hist_weight, n, hist_event)
        if self.user_feat is not None:
            feats = self.user_feat(user_codes + self.feature_offsets)  # (Q, F, D)
            pooled = torch.cat([pooled, feats.flatten(1)], dim=1)
        out = self.tower(pooled)
        if self.n_heads == 1:
            return out
        assert head is not None
        return out.reshape(n, self.n_heads, -1)[torch.arange(n, device=out.device), head]

    def pools(
        self,
        hist_items: torch.Tensor,
        hist_owner: torch.Tensor,
        hist_weight: torch.Tensor,
        n: int,
        hist_event: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(Q, D) weighted mean of each history, or (Q, K * D) with K behaviour-typed pools
        (each its type's weighted mean plus B[type], zero where the user has none); sum:
        (Q, D), those means (without B) times softplus(gate[type]), summed; gated: (Q, D), the
        mean of item + B[type] weighted by weight * softplus(gate[type])."""
        vec = self.hist_emb(hist_items) * self.warm[hist_items]  # (N, D); cold: content only
        extra = self.content(hist_items)
        if extra is not None:
            vec = vec + extra
        if self.gated:
            assert hist_event is not None and self.behaviour_emb is not None
            assert self.behaviour_gate is not None
            vec = vec + self.behaviour_emb(hist_event)
            hist_weight = hist_weight * F.softplus(self.behaviour_gate)[hist_event]
        pooled_by_type = self.n_behaviours > 0 and not self.gated
        k = self.n_behaviours if pooled_by_type else 1
        slot = hist_owner
        if pooled_by_type:
            assert hist_event is not None
            slot = hist_owner * k + hist_event  # row-major (Q, K) pools
        pooled = torch.zeros((n * k, vec.shape[1]), dtype=vec.dtype, device=vec.device)
        pooled.index_add_(0, slot, vec * hist_weight[:, None])
        total = torch.zeros(n * k, dtype=vec.dtype, device=vec.device)
        total.index_add_(0, slot, hist_weight)
        pooled = pooled / total.clamp_min(1e-9)[:, None]  # an empty pool is zero
        if self.summed:  # (Q, K, D) pools, each type weighted by softplus(gate[type])
            assert self.behaviour_gate is not None
            scale = F.softplus(self.behaviour_gate)[None, :, None]
            return (pooled.reshape(n, k, -1) * scale).sum(dim=1)
        if pooled_by_type:
            assert self.behaviour_emb is not None
            present = (total > 0).to(vec.dtype)[:, None]
            pooled = pooled + present * self.behaviour_emb.weight.repeat(n, 1)
        return pooled.reshape(n, k * vec.shape[1])

    def batch_users(self, batch: Examples) -> torch.Tensor:
        """(B, D) user tower output of a batch's histories, features and heads."""
        return self.users(
            batch.hist_items,
            batch.hist_owner,
            batch.hist_weight,
            batch.user_codes,
            batch.hist_event,
            batch.head,
        )

    def forward(self, batch: Examples) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) user vectors and (B + M, D) vectors of the targets then the uniform items."""
        users = self.batch_users(batch)
        return users, self.items(torch.cat([batch.targets, batch.uniform]), batch.id_keep)


def ragged_rows(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions into a CSR's `indices` of the given rows, concatenated, and their owner rows
    (0..len(rows)-1); vectorized over all rows."""
    lengths = indptr[rows + 1] - indptr[rows]
    owner = np.repeat(np.arange(len(rows)), lengths)
    starts = np.repeat(indptr[rows] - (np.cumsum(lengths) - lengths), lengths)
    return starts + np.arange(int(lengths.sum())), owner


@register("twotower")
class TwoTower(DotProduct, TorchRecommender[TwoTowerConfig]):
    """YouTube-DNN two-tower retrieval with content features and logQ-corrected softmax.

    History-native: a user's vector is their pooled training history (plus their features),
    so a training user's history given anonymously gets the same list when the model reads no
    user features; anonymous queries have unknown features. Cold items (no training
    interaction) are ranked by their content.
    """

    history_mode = "native"
    supports_cold_items = True
    module_: TwoTowerNet
    state_fields: ClassVar[tuple[str, ...]] = (
        "item_cats_",
        "n_categories_",
        "text_features_",
        "token_indptr_",
        "token_words_",
        "token_weights_",
        "warm_",
        "user_codes_",
        "feature_sizes_",
        "user_events_",
        "event_names_",
        "default_event_",
    )
    test_config: ClassVar[dict[str, Any]] = {
        "dim": 16,
        "epochs": 15,
        "lr": 0.01,
        "batch_size": 64,
        "text_dim": 8,
    }

    @classmethod
    def older_state(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Folders from before behaviour typing: an untyped history, no event codes."""
        return {
            "user_events_": np.zeros(0, np.int8),
            "event_names_": np.zeros(0, "<U1"),
            "default_event_": 0,
        }

    # ---- data --------------------------------------------------------------------------
    def prepare_data(self, train: Dataset) -> None:
        """Features aligned with the vocabularies, and the pair table the epochs sample from."""
        cfg = self.config
        if cfg.use_categories:
            self.item_cats_, self.n_categories_ = item_categories(train, cfg.max_categories)
        else:
            self.item_cats_, self.n_categories_ = np.zeros((self.n_items, 1), np.int64), 0
        if cfg.text_dim:
            self.text_features_ = text_features(train, cfg.text_dim, encoder=cfg.text_encoder)
        else:
            self.text_features_ = np.zeros((self.n_items, 0), np.float32)
        tokens = (
            text_tokens(train, cfg.text_tokens)
            if cfg.text_tokens
            else sp.csr_matrix((self.n_items, 0), dtype=np.float32)
        )
        self.token_indptr_, self.token_words_, self.token_weights_ = (
            tokens.indptr.astype(np.int64),
            tokens.indices.astype(np.int64),
            tokens.data.astype(np.float32),
        )
        if cfg.use_user_features:
            self.user_codes_, self.feature_sizes_ = user_feature_codes(train)
        else:
            self.user_codes_ = np.zeros((len(self.users_), 0), np.int64)
            self.feature_sizes_ = np.zeros(0, np.int64)
        matrix = self.user_items_
        self.warm_ = (np.diff(matrix.tocsc().indptr) > 0).astype(np.float32)
        self.user_events_, names = np.zeros(0, np.int8), [""]
        if cfg.behaviour_typed:
            self.user_events_, names = pair_events(train, matrix)
        self.event_names_ = np.array(names if cfg.behaviour_typed else [], dtype=str)
        if cfg.predict_event is not None and cfg.predict_event not in self.event_names_:
            raise ConfigError(
                f"predict_event={cfg.predict_event!r} needs behaviour_typed and training pairs"
                f" of that event (events: {self.event_names_.tolist()})"
            )
        counts = np.bincount(self.user_events_, minlength=len(names))
        self.default_event_ = int(counts.argmax())  # what an item given without an event is
        self.pair_user = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        self.targets = np.arange(matrix.nnz)  # CSR positions of the pairs trained as targets
        if cfg.target_events is not None:
            self.targets = np.flatnonzero(pairs_with_events(train, matrix, cfg.target_events))
        counts = np.bincount(matrix.indices[self.targets], minlength=self.n_items).astype(float)
        self.log_freq = np.log(np.maximum(counts, 1.0) / counts.sum())  # target share per item

    def build_module(self) -> TwoTowerNet:
        cfg = self.config
        return TwoTowerNet(
            self.n_items,
            cfg.dim,
            self.item_cats_,
            int(self.n_categories_),
            self.text_features_,
            sp.csr_matrix(
                (self.token_weights_, self.token_words_, self.token_indptr_),
                shape=(self.n_items, int(self.token_words_.max(initial=-1)) + 1),
            ),
            self.warm_,
            self.feature_sizes_,
            cfg.user_layers,
            cfg.dropout,
            len(self.event_names_),
            cfg.behaviour_pooling,
            len(self.event_names_) if cfg.predict_event is not None else 1,
        )

    def batches(self, train: Dataset, rng: np.random.Generator) -> Iterator[Examples]:
        """Every training pair once, in random order: the pair's item is the target and the
        user's other items (at most `max_history`, drawn at random) the history."""
        cfg = self.config
        matrix = self.user_items_
        indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
        order = self.targets[rng.permutation(len(self.targets))]
        for start in range(0, len(order), cfg.batch_size):
            pairs = order[start : start + cfg.batch_size]
            if len(pairs) < 2:
                continue
            users = self.pair_user[pairs]
            pos, owner = ragged_rows(indptr, users)
            keep = pos != pairs[owner]  # the target leaves its own history
            pos, owner = pos[keep], owner[keep]
            lengths = np.bincount(owner, minlength=len(pairs))
            if lengths.max(initial=0) > cfg.max_history:
                key = rng.random(len(pos))
                by = np.lexsort((key, owner))
                first = np.cumsum(lengths) - lengths
                rank = np.empty(len(pos), np.int64)
                rank[by] = np.arange(len(pos)) - first[owner[by]]
                pos, owner = pos[rank < cfg.max_history], owner[rank < cfg.max_history]
            if cfg.history_dropout:
                shown = rng.random(len(pos)) >= cfg.history_dropout
                pos, owner = pos[shown], owner[shown]
            uniform = rng.integers(0, self.n_items, cfg.n_uniform)
            keep = rng.random(len(pairs) + cfg.n_uniform) >= cfg.id_dropout
            yield self._examples(
                indices[pos],
                owner,
                data[pos],
                self.user_codes_[users],
                indices[pairs],
                uniform,
                keep,
                self._events_at(pos),
                self._events_at(pairs) if cfg.predict_event is not None else pairs * 0,
            )

    def _events_at(self, pos: np.ndarray) -> np.ndarray:
        """Event codes of the training pairs at CSR positions `pos` (zeros when untyped)."""
        if len(self.event_names_) == 0:
            return np.zeros(len(pos), np.int64)
        return self.user_events_[pos]

    def _examples(
        self,
        items: np.ndarray,
        owner: np.ndarray,
        weight: np.ndarray,
        codes: np.ndarray,
        targets: np.ndarray,
        uniform: np.ndarray,
        keep: np.ndarray,
        events: np.ndarray,
        head: np.ndarray,
    ) -> Examples:
        """Numpy parts of a batch as tensors on the model's device."""

        def as_tensor(x: np.ndarray, dtype: type) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)).to(self.device)

        return Examples(
            as_tensor(items, np.int64),
            as_tensor(owner, np.int64),
            as_tensor(weight, np.float32),
            as_tensor(events, np.int64),
            as_tensor(codes, np.int64),
            as_tensor(targets, np.int64),
            as_tensor(uniform, np.int64),
            as_tensor(keep, np.float32),
            as_tensor(head, np.int64),
        )

    def n_batch_samples(self, batch: Examples) -> int:
        return int(batch.targets.shape[0])

    def compute_loss(self, batch: Examples) -> torch.Tensor:
        """Sampled softmax of each row's target among the batch's targets and uniform items."""
        cfg = self.config
        users, items = self.module_(batch)  # (B, D), (B + M, D)
        if cfg.normalize:
            users, items = F.normalize(users, dim=-1), F.normalize(items, dim=-1)
        columns = torch.cat([batch.targets, batch.uniform])
        log_q = None
        if cfg.log_q:  # log of each column's expected count among the sampled columns
            n_b, n_u = len(batch.targets), len(batch.uniform)
            freq = torch.from_numpy(self.log_freq).to(users.device)[batch.targets] + np.log(n_b)
            uni = torch.full((n_u,), np.log(max(n_u, 1) / self.n_items), device=users.device)
            log_q = torch.cat([freq, uni]).to(users.dtype)
        same = batch.targets[:, None] == columns[None, :]  # (B, B + M)
        same[:, : len(batch.targets)] = in_batch_duplicates(batch.targets)
        return sampled_softmax_loss(users, items, log_q, cfg.temperature, duplicates=same)

    # ---- scoring ---------------------------------------------------------------------------
    def invalidate_cache(self) -> None:
        self.__dict__.pop("_item_vectors", None)

    def item_vectors(self) -> np.ndarray:
        """(n_items, dim) float32 item tower output (unit rows when `normalize`): with
        `user_vectors`, score = user . item, for inner-product vector search (faiss)."""
        return self._item_matrix().cpu().numpy().copy()

    def _item_matrix(self) -> torch.Tensor:
        cached = self.__dict__.get("_item_vectors")
        if cached is None:
            self._check_fitted()
            with torch.no_grad():
                items = torch.arange(self.n_items, device=self.device)
                cached = self.module_.items(items).float()
                if self.config.normalize:
                    cached = F.normalize(cached, dim=-1)
            self.__dict__["_item_vectors"] = cached
        return cached

    def user_vectors(
        self, history: sp.csr_matrix, user_idx: np.ndarray | None = None
    ) -> np.ndarray:
        """(Q, dim) float32 user tower output of (Q, n_items) weight histories; `user_idx`
        (-1 = anonymous) supplies the user features of known users (a behaviour-typed tower
        counts every item as the default event)."""
        return self._user_matrix(self._untyped(history), user_idx).cpu().numpy()

    def query_vectors(self, queries: QueryBatch) -> np.ndarray:
        """(Q, dim) user tower output of each query's history, with its user's features when
        known (what `score_queries` multiplies with the item vectors)."""
        return self._user_matrix(self._query_history(queries), queries.user_idx).cpu().numpy()

    def _untyped(self, history: sp.csr_matrix) -> TypedHistory:
        """A weight history with every item as the default event."""
        hist = sp.csr_matrix(history, dtype=np.float32)
        events = np.full(hist.nnz, self.default_event_, np.int64)
        return TypedHistory(hist.indptr.astype(np.int64), hist.indices, hist.data, events)

    def _training_history(self, user_idx: np.ndarray) -> TypedHistory:
        """Known users' training rows, each item with its training event."""
        matrix = self.user_items_
        pos, owner = ragged_rows(matrix.indptr, np.asarray(user_idx, np.int64))
        indptr = owner_indptr(owner, len(user_idx))
        return TypedHistory(indptr, matrix.indices[pos], matrix.data[pos], self._events_at(pos))

    def _query_history(self, queries: QueryBatch) -> TypedHistory:
        """Each query's history with events: the known user's typed training row (when the
        query starts from it) and the given items with their `Query.events` (an item without
        one, or an event unseen in training, is the default event). An untyped model, or a
        batch not built from queries (`from_history`), reads the weight history as is."""
        if len(self.event_names_) == 0 or queries.training is None:
            return self._untyped(queries.history)
        n = len(queries)
        train_rows = np.flatnonzero(queries.training)
        base = self._training_history(queries.user_idx[train_rows])
        given = queries.given
        codes = np.full(len(given.items), self.default_event_, np.int64)
        if given.events is not None:
            names = self.event_names_.tolist()
            codes = (
                pl.Series(given.events.tolist(), dtype=pl.Utf8)
                .replace_strict(names, list(range(len(names))), default=self.default_event_)
                .to_numpy()
                .astype(np.int64)
            )
        owner = np.concatenate(
            [
                np.repeat(train_rows, np.diff(base.indptr)),
                np.repeat(np.arange(n), np.diff(given.indptr)),
            ]
        )
        order = np.argsort(owner, kind="stable")
        return TypedHistory(
            owner_indptr(owner, n),
            np.concatenate([base.items, given.items])[order],
            np.concatenate([base.weights, given.weights.astype(np.float32)])[order],
            np.concatenate([base.events, codes])[order],
        )

    def _user_matrix(self, history: TypedHistory, user_idx: np.ndarray | None) -> torch.Tensor:
        n = len(history.indptr) - 1
        head = 0  # the user head that scores: `predict_event`'s
        if self.config.predict_event is not None:
            head = self.event_names_.tolist().index(self.config.predict_event)
        codes = np.zeros((n, self.user_codes_.shape[1]), dtype=np.int64)
        if user_idx is not None and codes.shape[1]:
            known = np.asarray(user_idx) >= 0
            codes[known] = self.user_codes_[np.asarray(user_idx)[known]]
        out = []
        with torch.no_grad():
            for lo in range(0, max(n, 1), USER_CHUNK):
                rows = np.arange(lo, min(lo + USER_CHUNK, n))
                pos, owner = ragged_rows(history.indptr, rows)
                batch = self._examples(
                    history.items[pos],
                    owner,
                    history.weights[pos],
                    codes[rows],
                    rows[:0],
                    rows[:0],
                    rows[:0],
                    history.events[pos],
                    np.full(len(rows), head),
                )
                vec = self.module_.batch_users(batch).float()
                out.append(F.normalize(vec, dim=-1) if self.config.normalize else vec)
        return torch.cat(out)[:n]

    def _scores(
        self, history: TypedHistory, user_idx: np.ndarray | None, item_idx: np.ndarray | None
    ) -> torch.Tensor:
        users = self._user_matrix(history, user_idx)
        items = self._item_matrix()
        if item_idx is not None:
            items = items[torch.from_numpy(np.asarray(item_idx, np.int64)).to(items.device)]
        return (users @ items.T).cpu()

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> torch.Tensor:
        """Scores of known users from their pooled training histories and features."""
        users = np.asarray(user_idx, dtype=np.int64)
        return self._scores(self._training_history(users), users, item_idx)

    def score_history(
        self, history: sp.csr_matrix, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Scores of weight histories given at call time (anonymous: unknown user features;
        behaviour-typed: every item the default event)."""
        return self._scores(self._untyped(history), None, item_idx)

    def score_queries(
        self, queries: QueryBatch, item_idx: np.ndarray | None = None
    ) -> torch.Tensor:
        """Every query from its history (behaviour-typed: with the events of its items),
        with the features of its user when known; empty histories get the popularity
        fallback."""
        out = self._scores(self._query_history(queries), queries.user_idx, item_idx)
        empty = queries.empty
        if empty.any():
            pop = self.item_popularity_ if item_idx is None else self.item_popularity_[item_idx]
            out[torch.from_numpy(empty)] = torch.from_numpy(pop)
        return out
