"""PatchGAN discriminator: one real/fake logit per image patch.

Strided 4x4 convolutions with leaky ReLU (Isola et al.); its receptive field
is about 70 pixels at the default depth, the scale of JPEG artifacts and
texture. No batch normalisation; spectral normalisation is optional.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class PatchDiscriminator(nn.Module):
    """[B, H, W, C] in [0, 1] -> logits [B, H', W', 1].

    With `spectral_norm`, every convolution's kernel is divided by its largest
    singular value (power iteration; the running vectors live in the
    'batch_stats' collection, updated when `update_stats` is True).
    """

    widths: Sequence[int] = (64, 128, 256, 512)
    spectral_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, update_stats: bool = False):
        def conv(features, stride, h):
            layer = nn.Conv(features, (4, 4), strides=(stride, stride), dtype=self.dtype)
            return nn.SpectralNorm(layer)(h, update_stats=update_stats) if self.spectral_norm else layer(h)

        x = x.astype(self.dtype) * 2.0 - 1.0
        for i, width in enumerate(self.widths):
            x = nn.leaky_relu(conv(width, 2 if i < len(self.widths) - 1 else 1, x), 0.2)
        return conv(1, 1, x).astype(jnp.float32)
