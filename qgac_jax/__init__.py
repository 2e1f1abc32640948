"""qgac_jax: quantization-guided JPEG artifact correction in JAX/Flax.

Modules, one concept each:
  quantization  JPEG tables, IJG scaling, reading tables from files, the Q-map
  models        the QGA block, the QGAC encoder-decoder and named variants
  metrics       PSNR, SSIM, PSNR-B in jax.numpy
"""

__version__ = "0.1.0"
