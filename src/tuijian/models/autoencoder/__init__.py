"""Autoencoder recommenders: I-AutoRec, CDAE, Mult-DAE, Mult-VAE and RecVAE.

They share `RowAutoencoder` (base.py): batches are rows of the interaction matrix and scores
are reconstructions. Importing this package registers every model in it.
"""

from tuijian.models.autoencoder.autorec import AutoRec, AutoRecConfig
from tuijian.models.autoencoder.base import RowAutoencoder, RowAutoencoderConfig, RowBatch
from tuijian.models.autoencoder.cdae import CDAE, CDAEConfig
from tuijian.models.autoencoder.mult_vae import MultDAE, MultDAEConfig, MultVAE, MultVAEConfig
from tuijian.models.autoencoder.recvae import RecVAE, RecVAEConfig

__all__ = [
    "CDAE",
    "AutoRec",
    "AutoRecConfig",
    "CDAEConfig",
    "MultDAE",
    "MultDAEConfig",
    "MultVAE",
    "MultVAEConfig",
    "RecVAE",
    "RecVAEConfig",
    "RowAutoencoder",
    "RowAutoencoderConfig",
    "RowBatch",
]
