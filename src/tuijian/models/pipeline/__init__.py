"""The two-stage pipeline (retrieval -> ranker -> business rules) as one Recommender.

Importing this package registers `pipeline`.
"""

from tuijian.models.pipeline.two_stage import PipelineConfig, TwoStagePipeline

__all__ = ["PipelineConfig", "TwoStagePipeline"]
