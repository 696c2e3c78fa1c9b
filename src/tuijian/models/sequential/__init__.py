"""Sequence models: SASRec, GRU4Rec and BERT4Rec over users' time-ordered items.

They share `SequenceRecommender` (base.py): padded sequences built once, whole-sequence
batches, and scoring of any session given at call time. Importing this package registers them.
"""

from tuijian.models.sequential.base import SequenceRecommender, SequentialConfig
from tuijian.models.sequential.bert4rec import BERT4Rec, BERT4RecConfig
from tuijian.models.sequential.gru4rec import GRU4Rec, GRU4RecConfig
from tuijian.models.sequential.sasrec import SASRec, SASRecConfig

__all__ = [
    "BERT4Rec",
    "BERT4RecConfig",
    "GRU4Rec",
    "GRU4RecConfig",
    "SASRec",
    "SASRecConfig",
    "SequenceRecommender",
    "SequentialConfig",
]
