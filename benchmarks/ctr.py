"""CTR ranking on the shop logs: Wide & Deep and DeepFM against logistic regression and
LightGBM, AUC and log-loss on the same test rows (see `benchmarks/shop.py` for the rows).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.ctr \
        --data retailrocket,taobao --out ../tmp/ctr.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import set_threads
from benchmarks.shop import (
    Fields,
    onehot_design,
    shop_split,
    standardizer,
    summary,
    test_rows,
    train_rows,
    tree_design,
)
from tuijian.models.registry import get_model
from tuijian.training import Trainer

NEGATIVES = 4


def run_deep(name: str, split: Any, rows: Any, epochs: int, seed: int) -> dict[str, Any]:
    """Fit a torch CTR model on the split's train part; its logits on the test rows."""
    model = get_model(name, epochs=epochs, n_negatives=NEGATIVES, seed=seed)
    t0 = time.perf_counter()
    model.fit(split.train, trainer=Trainer(progress=False))
    fit_s = time.perf_counter() - t0
    logits = model.predict(rows.users, rows.items)
    return {**summary(rows.labels, logits), "fit_s": round(fit_s, 1), "epochs": epochs}


def run_logistic(fields: Fields, train: Any, test: Any, n_items: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    standard = standardizer(train)
    t0 = time.perf_counter()
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(onehot_design(train, n_items, fields.n_cat, standard), train.labels)
    fit_s = time.perf_counter() - t0
    logits = model.decision_function(onehot_design(test, n_items, fields.n_cat, standard))
    return {
        **summary(test.labels, logits),
        "fit_s": round(fit_s, 1),
        "iterations": int(model.n_iter_[0]),
    }


def run_lightgbm(train: Any, test: Any, seed: int) -> dict[str, Any]:
    import lightgbm as lgb

    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 63,
        "min_data_in_leaf": 20,
        "feature_fraction": 1.0,
        "num_threads": 1,
        "seed": seed,
        "verbose": -1,
    }
    t0 = time.perf_counter()
    data = lgb.Dataset(tree_design(train), train.labels, categorical_feature=[0, 1])
    booster = lgb.train(params, data, num_boost_round=300)
    fit_s = time.perf_counter() - t0
    logits = booster.predict(tree_design(test), raw_score=True)
    return {**summary(test.labels, logits), "fit_s": round(fit_s, 1), "trees": 300}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="retailrocket,taobao")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--models", default="logreg,lightgbm,widedeep,deepfm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    result: dict[str, Any] = {"negatives_per_positive": NEGATIVES}
    for name in args.data.split(","):
        split = shop_split(name)
        fields = Fields(split.train)
        train, test = train_rows(fields, NEGATIVES), test_rows(fields, split, NEGATIVES)
        entry: dict[str, Any] = {
            "train_pairs": int(split.train.n_interactions),
            "test_rows": len(test.labels),
            "test_positives": int(test.labels.sum()),
            "items": split.train.n_items,
            "categories": fields.n_cat - 1,
        }
        for model in args.models.split(","):
            if model == "logreg":
                entry[model] = run_logistic(fields, train, test, split.train.n_items)
            elif model == "lightgbm":
                entry[model] = run_lightgbm(train, test, args.seed)
            else:
                entry[model] = run_deep(model, split, test, args.epochs, args.seed)
            print(name, model, entry[model], flush=True)
        result[name] = entry
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
