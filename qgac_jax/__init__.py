"""qgac_jax: quantization-guided artifact correction of compressed photos in JAX/Flax.

Packages by job (the README's map has each module):
  restoring   Restorer, what the network is told (guide), reading and writing photos, engines, the web page
  training    configs, the jitted step, the loop, checkpoints, sharding, the trainers
  evaluation  the protocol's cases, PSNR / SSIM / PSNR-B
  codecs      each codec's quantization read from its files (JPEG and its tables, WebP, HEIC, AVIF)
  models      the QGA U-Net and its variants, the quality estimator, VGG, the discriminator, exports
  data        training pairs and their pipelines
  commands    what every command line shares
The modules beside them are the command lines (`python -m qgac_jax.restore`, ...).
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Restorer is imported lazily: `import qgac_jax` stays cheap (no jax/flax import).
    if name == "Restorer":
        from qgac_jax.restoring.restorer import Restorer

        return Restorer
    raise AttributeError(f"module 'qgac_jax' has no attribute {name!r}")
