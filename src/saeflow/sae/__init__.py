"""Sparse autoencoder architectures: one module each, registered by name, saved in a SAELens-loadable
layout."""

# Importing the architecture modules registers them.
from saeflow.sae import batchtopk, jumprelu, matryoshka, ortsae, relu, residual, topk  # noqa: F401
from saeflow.sae.base import ARCHITECTURES, SAEConfig, SparseAutoencoder, load_sae, make_sae

__all__ = ["ARCHITECTURES", "SAEConfig", "SparseAutoencoder", "load_sae", "make_sae"]
