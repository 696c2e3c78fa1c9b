"""Two-tower (YouTube-DNN) retrieval on gowalla: the published LightGCN split, full ranking.

Recall@20 and NDCG@20 of every test user over all items (train items excluded), the number
BARS reports for YouTubeDNN (0.1754 / 0.1473). Gowalla has no validation part: the run trains
for `--set epochs=N` (or until `--max-seconds` of training), and the test curve is measured
every `--eval-every` epochs (its time is not counted as training).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.two_tower \
        --max-seconds 3000 --eval-every 5 --set lr=0.003 --out ../tmp/two-tower-gowalla.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA, peak_rss_mb, set_threads
from tuijian.data import fixed_split, load
from tuijian.evaluation import evaluate
from tuijian.models.registry import get_model
from tuijian.training import Trainer

METRICS = ("recall", "ndcg")
KS = (20,)


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings as config overrides, values read as JSON where they parse."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="twotower")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    raw = load("lightgcn", DATA / "lightgcn-splits" / "gowalla")
    split = fixed_split(raw.fixed_split, name="gowalla")
    overrides = parse_sets(args.sets)
    model = get_model(args.model, **overrides)
    curve: list[dict[str, Any]] = []
    result: dict[str, Any] = {"model": args.model, "overrides": overrides, "curve": curve}
    spent = {"train": 0.0}

    def track(fitted: Any, record: Any) -> bool:
        spent["train"] += record.train_seconds
        point = {
            "epoch": record.epoch + 1,
            "loss": round(record.loss, 5),
            "train_s": round(spent["train"], 1),
        }
        if (record.epoch + 1) % args.eval_every == 0:
            res = evaluate(fitted, split, ks=KS, metrics=METRICS, beyond_accuracy=False)
            point["test"] = {k: round(v, 5) for k, v in res.summary.items()}
        curve.append(point)
        print(json.dumps(point), flush=True)
        args.out.write_text(json.dumps(result, indent=2))
        return False

    trainer = Trainer(progress=False, callbacks=[track], max_seconds=args.max_seconds)
    t0 = time.perf_counter()
    model.fit(split.train, trainer=trainer)
    fit_s = time.perf_counter() - t0
    final = evaluate(model, split, ks=KS, metrics=METRICS, beyond_accuracy=False)
    result.update(
        config=model.config.model_dump(),
        test={k: round(v, 5) for k, v in final.summary.items()},
        epochs_run=len(trainer.history.epochs),
        stopped_by=trainer.history.stopped_by,
        fit_s=round(fit_s, 1),
        train_s=round(spent["train"], 1),
        peak_rss_mb=peak_rss_mb(),
    )
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}), flush=True)
    return result


if __name__ == "__main__":
    main()
