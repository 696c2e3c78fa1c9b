"""Cold-item protocol: a seeded 20 % of items is held out of training entirely; each test
user's interactions with them are the truth, ranked among the cold items only. Warm items:
the test interactions with the other items, ranked among the warm items. NDCG@10 of the
hybrid two-tower (text by TF-IDF; `--text-encoders` adds `minilm`, the packaged MiniLM
sentence encoder, and `words`, one embedding per word as well), the two-tower without content
(ids only) and the TF-IDF `content` model; `--blend-weights` adds `blend`s of the TF-IDF
hybrid and `content` (one fit, each two-tower weight evaluated).

Data: the synthetic shop ("small", titles, descriptions, categories; 8:2 at random), ml-100k
(titles and genres; 8:2 at random per user) and Book-Crossing (`bookcrossing`: the implicit
history, book titles, authors, years and publishers as text; 8:2 at random).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.cold_items \
        --data synthetic,ml-100k --out ../tmp/cold.json
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA, set_threads
from benchmarks.two_tower import parse_sets
from tuijian.data import Columns, Dataset, PrepareConfig, build_dataset, load, prepare
from tuijian.data.split import cold_item_split
from tuijian.data.synthetic import shop_dataset
from tuijian.models.base import Recommender
from tuijian.models.registry import get_model
from tuijian.training import Trainer

C = Columns
WORDS = 20_000  # `text_tokens` of the "words" hybrid: the TF-IDF vocabulary's size


def bookcrossing() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Book-Crossing (caserec reduction): implicit `book_history.dat` rows and the books'
    title and author / year / publisher as text. Its `items_info.dat` turned each `;` of the
    original text into a tab (see ../shared/data/README.md), so the fields between the ISBN
    and the three image URLs are re-joined with `;`, then split at the first field (title)."""
    folder = DATA / "bookcrossing-caserec"
    rows = pl.read_csv(folder / "book_history.dat", separator="\t", infer_schema=False)
    frame = rows.select(
        pl.col(rows.columns[0]).alias(C.user_id), pl.col(rows.columns[1]).alias(C.item_id)
    )
    ids, titles, texts = [], [], []
    lines = (folder / "items_info.dat").read_text(encoding="utf-8").splitlines()[1:]
    for line in lines:
        fields = line.split("\t")
        while fields and not fields[-1]:
            fields.pop()
        middle = html.unescape(";".join(fields[2:-3])).split(";")
        ids.append(fields[0])
        titles.append(middle[0])
        texts.append(" ".join(middle[1:]))
    features = pl.DataFrame({C.item_id: ids, C.title: titles, C.text: texts})
    return frame, features


def dataset(name: str) -> Dataset:
    """The named dataset with its item features, every featured item in the catalogue."""
    if name == "synthetic":
        raw = shop_dataset("small")
        weights = {"view": 1.0, "cart": 3.0, "buy": 5.0}
        frame, _ = prepare(raw.interactions, PrepareConfig(event_weights=weights))
    elif name == "ml-100k":
        raw = load("movielens", DATA / "ml-100k")
        frame, _ = prepare(raw.interactions)
    elif name == "bookcrossing":
        rows, features = bookcrossing()
        frame, _ = prepare(rows)
        return build_dataset(frame, item_features=features, name=name, catalogue="features")
    else:
        raise SystemExit(f"unknown dataset {name!r}: synthetic, ml-100k, bookcrossing")
    return build_dataset(frame, item_features=raw.item_features, name=name, catalogue="features")


def ndcg(model: Recommender, train: Dataset, truth: sp.csr_matrix, items: np.ndarray) -> float:
    """Mean NDCG@10 of users with truth, ranking `items` only, training items excluded."""
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    top, _ = model.topk(users, 10, exclude=train.matrix, candidates=items)
    relevant = truth[users].toarray() > 0
    hits = np.take_along_axis(relevant, np.maximum(top, 0), axis=1) & (top >= 0)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.cumsum(discounts)[np.minimum(relevant.sum(axis=1), 10) - 1]
    return float(np.mean((hits @ discounts) / ideal))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic,ml-100k")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--text-encoders",
        default="tfidf",
        help="hybrids to run: tfidf, minilm (the text extra), words (tfidf + word embeddings)",
    )
    parser.add_argument("--skip", default="", help="model labels not to run, e.g. twotower-ids")
    parser.add_argument(
        "--blend-weights",
        default="",
        help="two-tower weights w of a `blend` of the TF-IDF hybrid (w) and `content` (1 - w), "
        "e.g. 0.25,0.5,0.75: one fit, every weight evaluated",
    )
    parser.add_argument(
        "--blend-content-set",
        dest="blend_content",
        action="append",
        default=[],
        help="key=value settings of the blend's `content` component, e.g. popularity_exponent=0",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    tower = {"epochs": 20, "batch_size": 256, **parse_sets(args.sets)}
    models = {
        "pop": ("pop", {}),
        "content": ("content", {}),
        "twotower-ids": ("twotower", {**tower, "text_dim": 0, "use_categories": False}),
    }
    for encoder in args.text_encoders.split(","):
        label = "twotower-hybrid" + ("" if encoder == "tfidf" else f"-{encoder}")
        text = {"text_tokens": WORDS} if encoder == "words" else {"text_encoder": encoder}
        models[label] = ("twotower", {**tower, **text})
    for label in filter(None, args.skip.split(",")):
        models.pop(label)
    result: dict[str, Any] = {"fraction": args.fraction, "twotower": tower}
    for name in args.data.split(","):
        cold = cold_item_split(dataset(name), args.fraction, args.seed)
        train, parts = cold.train, cold.parts
        entry: dict[str, Any] = {"cold_items": len(parts["cold"][0])}
        for label, (model_name, params) in models.items():
            t0 = time.perf_counter()
            model = get_model(model_name, **params).fit(train, trainer=Trainer(progress=False))
            entry[label] = {
                part: round(ndcg(model, train, truth, items), 4)
                for part, (items, truth) in parts.items()
            }
            entry[label]["fit_s"] = round(time.perf_counter() - t0, 1)
            print(name, label, entry[label], flush=True)
        weights = [float(w) for w in filter(None, args.blend_weights.split(","))]
        if weights:
            t0 = time.perf_counter()
            content = parse_sets(args.blend_content)
            blend = get_model("blend", models=("twotower", "content"), params=(tower, content))
            blend.fit(train, trainer=Trainer(progress=False))
            fit_s = round(time.perf_counter() - t0, 1)
            for w in weights:
                label = f"blend-{w:g}"
                model = blend.reweighted((w, 1.0 - w))
                entry[label] = {
                    part: round(ndcg(model, train, truth, items), 4)
                    for part, (items, truth) in parts.items()
                }
                entry[label]["fit_s"] = fit_s
                print(name, label, entry[label], flush=True)
        result[name] = entry
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
