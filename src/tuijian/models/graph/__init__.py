"""Graph recommenders: LightGCN and NGCF over the normalized user-item graph.

Importing this package registers both models.
"""

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
    "NGCF",
    "LightGCN",
    "LightGCNConfig",
    "NGCFConfig",
    "NormalizedGraph",
    "bipartite_adjacency",
    "layer_mean",
    "layer_mean_rows",
    "propagate",
]
