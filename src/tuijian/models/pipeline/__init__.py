"""Models made of models: the two-stage pipeline (retrieval -> ranker -> business rules) and
the weighted blend of scores, each one Recommender.

Importing this package registers `pipeline` and `blend`.
"""

from tuijian.models.pipeline.blend import Blend, BlendConfig
from tuijian.models.pipeline.two_stage import PipelineConfig, TwoStagePipeline

__all__ = ["Blend", "BlendConfig", "PipelineConfig", "TwoStagePipeline"]
