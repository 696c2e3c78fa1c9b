"""Neural collaborative filtering: GMF, MLP and NeuMF (He et al. 2017)."""

from tuijian.models.ncf.neumf import GMF, NCFMLP, GMFConfig, MLPConfig, NeuMF, NeuMFConfig

__all__ = ["GMF", "NCFMLP", "GMFConfig", "MLPConfig", "NeuMF", "NeuMFConfig"]
