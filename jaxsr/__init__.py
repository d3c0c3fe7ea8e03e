"""jaxsr: deep-learning single-image super-resolution in JAX/Flax.

Images are NHWC float32 in [0, 1] at every model, loss and metric boundary; uint8 appears only at
file I/O. See README.md for the curated API.
"""

__version__ = "0.1.0"
