"""Classical recommenders: popularity, neighbourhood, content, EASE, ADMM-SLIM and ALS.

Importing this package registers every model in it.
"""

from tuijian.models.classic.admmslim import ADMMSLIM, ADMMSLIMConfig
from tuijian.models.classic.als import ALS, ALSConfig
from tuijian.models.classic.biased_mf import BiasedMF, BiasedMFConfig
from tuijian.models.classic.bpr_mf import BPRMF, BPRConfig
from tuijian.models.classic.content import ContentBased, ContentConfig
from tuijian.models.classic.ease import EASE, EASEConfig, NeighborhoodEASE, NeighborhoodEASEConfig
from tuijian.models.classic.item_knn import ItemKNN, ItemKNNConfig
from tuijian.models.classic.popularity import MostPopular, PopularityConfig, Random, RandomConfig
from tuijian.models.classic.user_knn import UserKNN, UserKNNConfig

__all__ = [
    "ADMMSLIM",
    "ALS",
    "BPRMF",
    "EASE",
    "ADMMSLIMConfig",
    "ALSConfig",
    "BPRConfig",
    "BiasedMF",
    "BiasedMFConfig",
    "ContentBased",
    "ContentConfig",
    "EASEConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "MostPopular",
    "NeighborhoodEASE",
    "NeighborhoodEASEConfig",
    "PopularityConfig",
    "Random",
    "RandomConfig",
    "UserKNN",
    "UserKNNConfig",
]
