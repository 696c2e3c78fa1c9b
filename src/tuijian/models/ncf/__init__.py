"""Neural collaborative filtering: GMF, MLP, NeuMF (He et al. 2017), SimpleX (Mao et al. 2021)."""

from tuijian.models.ncf.neumf import GMF, NCFMLP, GMFConfig, MLPConfig, NeuMF, NeuMFConfig
from tuijian.models.ncf.simplex import SimpleX, SimpleXConfig

__all__ = [
    "GMF",
    "NCFMLP",
    "GMFConfig",
    "MLPConfig",
    "NeuMF",
    "NeuMFConfig",
    "SimpleX",
    "SimpleXConfig",
]
