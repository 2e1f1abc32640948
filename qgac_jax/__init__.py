"""qgac_jax: quantization-guided JPEG artifact correction in JAX/Flax.

Modules, one concept each:
  quantization  JPEG tables, IJG scaling, reading tables from files, the Q-map
  models        the QGA block, the QGAC encoder-decoder and named variants
  metrics       PSNR, SSIM, PSNR-B in jax.numpy
  inference     Restorer: a trained export applied to real photos (image_io reads them, tiling cuts them)
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Restorer is imported lazily: `import qgac_jax` stays cheap (no jax/flax import).
    if name == "Restorer":
        from qgac_jax.restoring.restorer import Restorer

        return Restorer
    raise AttributeError(f"module 'qgac_jax' has no attribute {name!r}")
