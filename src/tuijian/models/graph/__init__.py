"""Graph recommenders: LightGCN and NGCF over the normalized user-item graph; the training-free
graph filters GF-CF and BSPM over the normalized item-item graph.

Importing this package registers every model in it.
"""

from tuijian.models.graph.bspm import BSPM, BSPMConfig
from tuijian.models.graph.gfcf import GFCF, GFCFConfig
from tuijian.models.graph.lightgcn import LightGCN, LightGCNConfig
from tuijian.models.graph.ngcf import NGCF, NGCFConfig
from tuijian.models.graph.propagation import (
    NormalizedGraph,
    bipartite_adjacency,
    layer_mean,
    layer_mean_rows,
    propagate,
)

__all__ = [
    "BSPM",
    "GFCF",
    "NGCF",
    "BSPMConfig",
    "GFCFConfig",
    "LightGCN",
    "LightGCNConfig",
    "NGCFConfig",
    "NormalizedGraph",
    "bipartite_adjacency",
    "layer_mean",
    "layer_mean_rows",
    "propagate",
]
