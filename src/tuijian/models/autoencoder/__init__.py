"""Autoencoder recommenders: I-AutoRec, CDAE, Mult-DAE and Mult-VAE.

They share `RowAutoencoder` (base.py): batches are rows of the interaction matrix and scores
are reconstructions. Importing this package registers every model in it.
"""

from tuijian.models.autoencoder.autorec import AutoRec, AutoRecConfig
from tuijian.models.autoencoder.base import RowAutoencoder, RowAutoencoderConfig, RowBatch
from tuijian.models.autoencoder.cdae import CDAE, CDAEConfig
from tuijian.models.autoencoder.mult_vae import MultDAE, MultDAEConfig, MultVAE, MultVAEConfig

__all__ = [
    "CDAE",
    "AutoRec",
    "AutoRecConfig",
    "CDAEConfig",
    "MultDAE",
    "MultDAEConfig",
    "MultVAE",
    "MultVAEConfig",
    "RowAutoencoder",
    "RowAutoencoderConfig",
    "RowBatch",
]
