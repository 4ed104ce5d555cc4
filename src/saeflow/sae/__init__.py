"""Sparse autoencoder architectures: one module each, registered by name, saved in a SAELens-loadable layout."""

from saeflow.sae.base import ARCHITECTURES, SAEConfig, SparseAutoencoder, load_sae, make_sae

# Importing the architecture modules registers them.
from saeflow.sae import relu, topk  # noqa: E402,F401

__all__ = ["ARCHITECTURES", "SAEConfig", "SparseAutoencoder", "load_sae", "make_sae"]
