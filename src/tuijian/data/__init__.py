"""Data: sources, preparation, splits and the immutable Dataset."""

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset, build_dataset
from tuijian.data.prepare import PrepareConfig, PrepareReport, prepare
from tuijian.data.sources import RawData, from_frame, load
from tuijian.data.split import (
    Split,
    fixed_split,
    leave_last_out_split,
    make_split,
    random_split,
    temporal_split,
    user_temporal_split,
)
from tuijian.data.vocabulary import Vocabulary

__all__ = [
    "Columns",
    "Dataset",
    "PrepareConfig",
    "PrepareReport",
    "RawData",
    "Split",
    "Vocabulary",
    "build_dataset",
    "fixed_split",
    "from_frame",
    "leave_last_out_split",
    "load",
    "make_split",
    "prepare",
    "random_split",
    "temporal_split",
    "user_temporal_split",
]
