"""Evaluation: full-ranking metrics (default), sampled protocol (labelled), rating metrics."""

from tuijian.evaluation.evaluate import (
    EvaluationResult,
    evaluate,
    evaluate_ranking,
    evaluate_ratings,
    evaluate_sampled,
)

__all__ = [
    "EvaluationResult",
    "evaluate",
    "evaluate_ranking",
    "evaluate_ratings",
    "evaluate_sampled",
]
