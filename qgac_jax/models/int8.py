"""int8 arithmetic simulated in the forward pass, for quantization-aware fine-tuning.

The int8 graph that restores on CPUs (`graphs/int8_graph`) is ONNX
Runtime's QDQ recipe: each convolution outside the model's KEEP_FLOAT reads int8
weights (symmetric, one scale per output channel: max |w| / 127) and a
uint8 input, and its output is quantized to uint8 again; every consumer of
a quantized tensor (a residual add, the QGA's multiply, a concat) reads its
dequantized value. A QGAC built with `int8="fake"` computes exactly that in
float: each such tensor is rounded to the uint8 grid of its own range
[lo, hi] where it is produced, once, and each such kernel to its
int8 grid, with straight-through gradients (round's gradient taken as 1
inside the range, 0 where it clips), so a fine-tune learns weights that
survive the rounding and ranges that suit them (both are parameters). The
biases are int32 in the graph (step = input step x weight step, a
thousandth of an activation step): left in float here.

`int8="observe"` runs the float network and sows each of those tensors
('int8_points' collection), which `calibrate` turns into starting ranges
and `graphs/int8_graph` matches to the graph's tensors by value.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

MODES = ("", "observe", "fake")  # QGAC.int8: float, float with its points sown, int8 simulated
RANGE = "int8_range"  # the parameter holding a tensor's [lo, hi]


def _round_ste(x):
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def uint8_grid(lo, hi) -> Tuple[jax.Array, jax.Array]:
    """(scale, zero point) of ONNX Runtime's asymmetric uint8 quantization of the range [lo, hi]: the range
    widened to hold 0, zero point rounded onto the grid."""
    lo, hi = jnp.minimum(lo, 0.0), jnp.maximum(hi, 0.0)
    scale = jnp.maximum(hi - lo, 1e-8) / 255.0
    return scale, jnp.clip(_round_ste(-lo / scale), 0.0, 255.0)


def fake_uint8(x, lo, hi):
    """x on the uint8 grid of [lo, hi], dequantized; gradients straight through (to x, lo and hi)."""
    scale, zero = uint8_grid(lo, hi)
    q = jnp.clip(_round_ste(x / scale) + zero, 0.0, 255.0)
    return (q - zero) * scale


def fake_int8_kernel(kernel):
    """A [.., Cin, Cout] kernel on its per-output-channel symmetric int8 grid (scale max |w| / 127)."""
    axes = tuple(range(kernel.ndim - 1))
    scale = jax.lax.stop_gradient(jnp.maximum(jnp.max(jnp.abs(kernel), axis=axes), 1e-12) / 127.0)
    return jnp.clip(_round_ste(kernel / scale), -127.0, 127.0) * scale


class Point(nn.Module):
    """One quantized tensor: its range parameter, and what the mode does with the tensor."""

    mode: str = ""

    @nn.compact
    def __call__(self, x):
        if not self.mode:
            return x
        if self.mode == "observe":
            self.sow("int8_points", "value", x)
            return x
        bounds = self.param(RANGE, lambda _: jnp.array([0.0, 1.0], jnp.float32))  # set by `calibrate`
        return fake_uint8(x.astype(jnp.float32), bounds[0], bounds[1]).astype(x.dtype)


class Conv(nn.Module):
    """nn.Conv's parameters and arithmetic ('SAME' padding), with an int8 kernel under "fake" and its output a
    Point (named 'output')."""

    features: int
    kernel_size: Tuple[int, int] = (3, 3)
    strides: Tuple[int, int] = (1, 1)
    dtype: Any = jnp.float32
    mode: str = "fake"

    @nn.compact
    def __call__(self, x):  # [B, H, W, Cin] -> [B, H / s, W / s, features]
        kernel = self.param("kernel", nn.linear.default_kernel_init,
                            tuple(self.kernel_size) + (x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        if self.mode == "fake":
            kernel = fake_int8_kernel(kernel)
        y = jax.lax.conv_general_dilated(x.astype(self.dtype), kernel.astype(self.dtype), tuple(self.strides), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return Point(self.mode, name="output")(y + bias.astype(self.dtype))


def is_range(path) -> bool:
    return getattr(path[-1], "key", None) == RANGE


def float_params(params):
    """The parameters without their int8 ranges: what the float network reads."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
    return flax.traverse_util.unflatten_dict({k: v for k, v in flat.items() if k[-1] != RANGE})


def ranges(params) -> Dict[str, np.ndarray]:
    """{'enc0_res1/input': [lo, hi], ...} of a fake-quantized model's parameters."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
    return {"/".join(k[:-1]): np.asarray(v, np.float32) for k, v in flat.items() if k[-1] == RANGE}


def widened(params, factor: float):
    """`params` with every int8 range multiplied by `factor`, both ends. Ranges learned on training crops fit a
    crop's extremes; a large, sharp photo runs past them, and clipping costs it more than the coarser steps cost
    others (measured: docs/performance.md#int8-by-default)."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
    return flax.traverse_util.unflatten_dict(
        {k: np.asarray(v, np.float32) * factor if k[-1] == RANGE else v for k, v in flat.items()})


def _observer(model):
    """(float params, image, qmap) -> {point: value [B, H, W, C]} of each quantized tensor, jitted."""
    def run(params, image, qmap):
        _, state = model.clone(int8="observe").apply({"params": params}, image, qmap, mutable=["int8_points"])
        flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(state["int8_points"]))
        return {"/".join(k[:-1]): v[0] for k, v in flat.items()}  # (*module path, 'value') -> the Point's name
    return jax.jit(run)


def observe(model, params, image, qmap) -> Dict[str, np.ndarray]:
    """{point: value [B, H, W, C]} of each quantized tensor of the float network (model.int8 any mode)."""
    return {k: np.asarray(v) for k, v in _observer(model)(float_params(params), image, qmap).items()}


def calibrate(model, params, feeds: Iterable[Tuple[np.ndarray, np.ndarray]], spread: float = 0.0):
    """`params` with every Point's range set as ONNX Runtime's CalibMovingAverage sets it from one set of
    calibration inputs: the mean over images of each image's min, and of its max (feeds: (image [1, H, W, C],
    qmap [1, H, W, K]) pairs); with `spread` (0..50), the spread-th percentile of the mins and the
    (100 - spread)-th of the maxes instead, wider where images differ (low and high qualities).
    `params` may be a float model's: the ranges are added."""
    clean, run = float_params(params), _observer(model)
    seen: Dict[Tuple[str, ...], list] = {}
    for image, qmap in feeds:
        for name, value in run(clean, image, qmap).items():
            seen.setdefault(tuple(name.split("/")) + (RANGE,), []).append([np.min(value), np.max(value)])
    if not seen:
        raise ValueError("calibrate needs at least one (image, qmap) pair and a model with int8 points")
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(clean))

    def bounds(v):  # [images, 2] -> [2]
        v = np.asarray(v, np.float32)
        return v.mean(axis=0) if not spread else np.array([np.percentile(v[:, 0], spread),
                                                           np.percentile(v[:, 1], 100 - spread)], np.float32)

    flat.update({k: jnp.asarray(bounds(v), jnp.float32) for k, v in seen.items()})
    return flax.traverse_util.unflatten_dict(flat)
