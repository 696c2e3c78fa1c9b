"""Does a metric at 10 depend on the other cut-offs asked for? Popularity on the Taobao sample.

Popularity gives many items equal scores (the same count of users), so which tied items fill
the last slots of a top-k decides the metric. With the deterministic tie-break of
`tuijian.models.ranking.topk_ordered` NDCG@10 and Recall@10 must be the same for every set of
cut-offs; run it against an older checkout (PYTHONPATH=OLD/src) to see the drift it removed.

    .venv/bin/python -m benchmarks.tie_break
"""

from __future__ import annotations

import argparse
import json

from benchmarks.common import DATA, SEED
from tuijian.data import PrepareConfig, build_dataset, load, prepare, random_split
from tuijian.evaluation import evaluate
from tuijian.models.registry import get_model

CUTOFF_SETS = ((10,), (10, 20), (5, 10, 20, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(DATA / "taobao-userbehavior-head"))
    args = parser.parse_args()
    raw = load("taobao", args.path)
    frame, _ = prepare(
        raw.interactions, PrepareConfig(min_user_interactions=5, min_item_interactions=2)
    )
    data = build_dataset(frame, name="taobao-head")
    split = random_split(data, (0.8, 0.1, 0.1), seed=SEED)
    model = get_model("pop").fit(split.train)
    print(data)
    for ks in CUTOFF_SETS:
        result = evaluate(model, split, ks=ks, beyond_accuracy=False)
        row = {"ks": list(ks), "ndcg@10": result["ndcg@10"], "recall@10": result["recall@10"]}
        print(json.dumps(row))


if __name__ == "__main__":
    main()
