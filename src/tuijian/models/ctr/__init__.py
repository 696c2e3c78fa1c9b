"""CTR ranking models (Wide & Deep, DeepFM): pointwise scores of (query, item) pairs from
history, user, item and pair fields, for the ranking stage of a pipeline.

The package is `ctr`, not `ranking`: `tuijian.models.ranking` is the one ranking path (score,
mask, top-k) that every model and the evaluator import. Importing this package registers
`widedeep` and `deepfm`.
"""

from tuijian.models.ctr.base import CTRConfig, CTRRecommender
from tuijian.models.ctr.deepfm import DeepFM, DeepFMConfig
from tuijian.models.ctr.wide_deep import WideDeep, WideDeepConfig

__all__ = ["CTRConfig", "CTRRecommender", "DeepFM", "DeepFMConfig", "WideDeep", "WideDeepConfig"]
