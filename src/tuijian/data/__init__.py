"""Data: sources, preparation, splits and the immutable Dataset."""

from tuijian.data.columns import Columns
from tuijian.data.dataset import Dataset, build_dataset
from tuijian.data.split import Split
from tuijian.data.vocabulary import Vocabulary

__all__ = ["Columns", "Dataset", "Split", "Vocabulary", "build_dataset"]
