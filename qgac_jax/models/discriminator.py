"""PatchGAN discriminator: one real/fake logit per image patch.

Strided 4x4 convolutions with leaky ReLU (Isola et al.); its receptive field
is about 70 pixels at the default depth, the scale of JPEG artifacts and
texture. No normalisation layers, so the train state stays pure params.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp


class PatchDiscriminator(nn.Module):
    """[B, H, W, C] in [0, 1] -> logits [B, H', W', 1]."""

    widths: Sequence[int] = (64, 128, 256, 512)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = x.astype(self.dtype) * 2.0 - 1.0
        for i, width in enumerate(self.widths):
            stride = 2 if i < len(self.widths) - 1 else 1
            x = nn.leaky_relu(nn.Conv(width, (4, 4), strides=(stride, stride), dtype=self.dtype)(x), 0.2)
        return nn.Conv(1, (4, 4), dtype=self.dtype)(x).astype(jnp.float32)
