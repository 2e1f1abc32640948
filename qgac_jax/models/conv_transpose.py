"""The decoder's 2x2, stride-2 transposed convolution, written as one matmul.

Why: its 2x2 windows do not overlap, so each input pixel writes its own 2x2
output tile: y[2i + a, 2j + b] = x[i, j] @ K[1 - a, 1 - b] + bias. XLA CPU
lowers flax's `nn.ConvTranspose` to a dilated convolution whose kernel
gradient is very slow (docs/performance.md, `python benchmarks/profile_step.py`);
as an einsum both gradients are matmuls. Parameters, initialisers and outputs are
flax's, so checkpoints of either load in the other.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


class ConvTranspose2x2(nn.Module):
    """`nn.ConvTranspose(features, (2, 2), strides=(2, 2))`: [B, h, w, Ci] -> [B, 2h, 2w, Co].

    Same parameters ('kernel' [2, 2, Ci, Co], 'bias' [Co]) as flax's module,
    which flips the kernel: output pixel (2i + a, 2j + b) takes tap (1 - a, 1 - b).
    """

    features: int
    dtype: Any = jnp.float32
    kernel_init: Callable = nn.linear.default_kernel_init
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (2, 2, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        b, h, w, _ = x.shape
        y = jnp.einsum("bhwc,ijcd->bhiwjd", x, kernel[::-1, ::-1])  # [B, h, 2, w, 2, Co]
        return y.reshape(b, 2 * h, 2 * w, self.features) + bias
