"""The quantization-guided attention (QGA) block.

The block tells the decoder where repair is needed: features F and the Q-map
(average-pooled to F's size) are fused, a two-convolution subnetwork with a
sigmoid turns them into a one-channel attention map A in [0, 1], and the skip
carries A * F. Large steps, texture and block borders should earn high A.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def pool_qmap(qmap: jax.Array, factor: int) -> jax.Array:
    """Average-pools a [B, H, W, K] Q-map by `factor` (H, W multiples of it)."""
    if factor == 1:
        return qmap
    b, h, w, k = qmap.shape
    # A reshape and a mean, not nn.avg_pool: the same numbers, and it keeps
    # symbolic shapes exact (jax.export, the ONNX converter).
    return qmap.reshape(b, h // factor, factor, w // factor, factor, k).mean(axis=(2, 4))


class QGABlock(nn.Module):
    """F [B, h, w, C], Q-map [B, h, w, K] -> (A * F [B, h, w, C], A [B, h, w, 1]).

    With K == 1 the map is broadcast over the C channels; with K > 1 (luma and
    chroma) a 1x1 convolution projects it to C channels first (docs/algorithm.md).
    The attention map is also sown into the 'intermediates' collection as
    'attention' so callers can look at it (`mutable=['intermediates']`).
    """

    hidden: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features: jax.Array, qmap: jax.Array):
        channels = features.shape[-1]
        qmap = qmap.astype(self.dtype)
        if qmap.shape[-1] == 1:
            guide = jnp.broadcast_to(qmap, features.shape[:-1] + (channels,))
        else:
            guide = nn.Conv(channels, (1, 1), dtype=self.dtype, name="qmap_proj")(qmap)
        fused = features + guide  # [B, h, w, C]
        hidden = nn.relu(nn.Conv(self.hidden, (3, 3), dtype=self.dtype, name="att_conv1")(fused))
        logits = nn.Conv(1, (3, 3), dtype=self.dtype, name="att_conv2")(hidden)
        attention = nn.sigmoid(logits.astype(jnp.float32)).astype(features.dtype)  # [B, h, w, 1]
        self.sow("intermediates", "attention", attention)
        return attention * features, attention
