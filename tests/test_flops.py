"""FLOPs counted from a jaxpr: matmuls and convolutions by hand, nested jits included."""

import jax
import jax.numpy as jnp

from qgac_jax.models.flops import count_flops


def test_matmul_and_convolution_flops_by_hand_and_through_nested_jit():
    a, b = jnp.zeros((4, 8)), jnp.zeros((8, 16))
    assert count_flops(lambda x, y: x @ y, a, b) == 2 * 4 * 8 * 16
    x, k = jnp.zeros((2, 10, 12, 3)), jnp.zeros((3, 3, 3, 5))  # NHWC, HWIO, SAME: every output 3*3*3 MACs

    def conv(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    assert count_flops(conv, x, k) == 2 * (2 * 10 * 12 * 5) * (3 * 3 * 3)
    assert count_flops(jax.jit(lambda x, k: conv(x, k) + 1), x, k) == count_flops(conv, x, k)
    assert count_flops(lambda x: jnp.tanh(x) * 2, x) == 0  # elementwise work is not counted
