"""saeflow: train and study (specialised) sparse autoencoders on foundation-model activations."""

__version__ = "0.1.0"
