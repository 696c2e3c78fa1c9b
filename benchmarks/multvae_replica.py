"""RecBole's MultiVAE re-typed in plain torch, trained on our ml-1m split, scored by our evaluator.

A diagnostic for the Mult-VAE gap in docs/benchmarks/autoencoders.md: it reproduces RecBole
1.2.1's `MultiVAE` (dense input, xavier-normal init, z noise with std 0.01, KL annealed per
batch, `torch.randperm` user batches, Adam) line for line, trains it with a plain loop and,
after every epoch, copies its weights into our `multvae` to score valid and test with our
full-ranking evaluator. If it lands where our model does, the gap is not in our network,
loss or trainer. `--recbole-padding` also copies what RecBole's dataset does to the rows: a
padding user (an empty row) and a padding item (column 0), and no column for the items that
have no training interaction.

    .venv/bin/python -m benchmarks.multvae_replica --lr 3e-3 --epochs 22
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import SEED, random_split_of, set_threads
from tuijian.evaluation.evaluate import evaluate
from tuijian.models.autoencoder.mult_vae import MultVAE
from tuijian.models.registry import get_model


def recbole_mlp(dims: list[int]) -> nn.Sequential:
    """RecBole's `mlp_layers`: Linear layers with tanh between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(d_in, d_out))
        if i != len(dims) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def replica_rows(seen: np.ndarray, padding: bool) -> tuple[torch.Tensor, np.ndarray, int]:
    """(rows, our item of each replica column from `offset` on, offset): our binary train
    rows, or with RecBole's padding user and item and only the items that have a row entry."""
    if not padding:
        return torch.from_numpy(seen), np.arange(seen.shape[1]), 0
    keep = np.flatnonzero(seen.sum(0) > 0)
    rows = torch.zeros(seen.shape[0] + 1, len(keep) + 1)
    rows[1:, 1:] = torch.from_numpy(seen[:, keep])
    return rows, keep, 1


def copy_into(
    ours: MultVAE, enc: nn.Sequential, dec: nn.Sequential, items: np.ndarray, offset: int
) -> None:
    """Load the replica's weights into our network (the same function, our layout); items
    without a replica column get a zero input row and a -1e4 output bias (never ranked)."""
    net = ours.module_
    cols = torch.from_numpy(items)
    with torch.no_grad():
        net.input.weight.zero_()
        net.input.weight[cols] = enc[0].weight.T[offset:]
        net.input.bias.copy_(enc[0].bias)
        net.to_latent.weight.copy_(enc[2].weight)
        net.to_latent.bias.copy_(enc[2].bias)
        net.decoder[0].weight.copy_(dec[0].weight)
        net.decoder[0].bias.copy_(dec[0].bias)
        net.output.weight.zero_()
        net.output.bias.fill_(-1e4)
        net.output.weight[cols] = dec[2].weight[offset:]
        net.output.bias[cols] = dec[2].bias[offset:]
    ours.invalidate_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--epochs", type=int, default=22)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--recbole-padding", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    set_threads(1)
    torch.manual_seed(args.seed)
    split = random_split_of("ml-1m")
    ours = get_model("multvae", noise_std=0.01, epochs=1, seed=args.seed)  # on set_threads(1)
    ours.fit(split.train)  # builds the vocabularies and a network to copy into
    seen = ours.seen_.toarray().astype(np.float32)  # (U, I) binary
    rows, items, offset = replica_rows(seen, args.recbole_padding)
    n_users, n_items = rows.shape
    enc, dec = recbole_mlp([n_items, 600, 400]), recbole_mlp([200, 600, n_items])
    for layer in [*enc, *dec]:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=args.lr)
    curve, update = [], 0
    for epoch in range(args.epochs):
        t0, total = time.perf_counter(), 0.0
        order = torch.randperm(n_users)
        for start in range(0, n_users, 500):
            x = rows[order[start : start + 500]]
            update += 1
            h = enc(F.dropout(F.normalize(x), 0.5, training=True))
            mu, logvar = h[:, :200], h[:, 200:]
            z = mu + torch.zeros_like(mu).normal_(0, 0.01) * torch.exp(0.5 * logvar)
            kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
            ce = -(F.log_softmax(dec(z), 1) * x).sum(1).mean()
            loss = ce + min(0.2, update / 200_000) * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        copy_into(ours, enc, dec, items, offset)
        point = {"epoch": epoch, "loss": round(total, 1), "s": round(time.perf_counter() - t0, 2)}
        for part in ("valid", "test"):
            res = evaluate(ours, split, part=part, ks=(10,), metrics=("ndcg",))
            point[part] = round(res["ndcg@10"], 4)
        curve.append(point)
        print(json.dumps(point), flush=True)
    best = max(curve, key=lambda p: p["valid"])
    print("best valid", json.dumps(best))
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "curve": curve})
        )


if __name__ == "__main__":
    main()
