"""The QGAC encoder-decoder: a U-Net with QGA-weighted skips and a residual head.

Input is concat(Y, Q-map); the network predicts a residual R and returns
X = Y + R, so a zero-initialised head starts training from the identity
(the JPEG itself), which is already a strong baseline.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from qgac_jax.models import int8 as int8_lib
from qgac_jax.models.conv_transpose import ConvTranspose2x2
from qgac_jax.models.qga import QGABlock, pool_qmap


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 plus identity; keeps [B, h, w, C]. With `int8`, the input (where no quantized
    convolution produced it: `quantize_input`), each output and the ReLU are quantized tensors (models/int8.py)."""

    dtype: Any = jnp.float32
    int8: str = ""
    quantize_input: bool = True
    float_first: bool = False  # under `int8`, the first convolution (and so its input) stays float

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        if not self.int8:
            h = nn.relu(nn.Conv(c, (3, 3), dtype=self.dtype)(x))
            return x + nn.Conv(c, (3, 3), dtype=self.dtype)(h)
        if self.float_first:
            h = nn.relu(nn.Conv(c, (3, 3), dtype=self.dtype, name="Conv_0")(x))
        else:
            if self.quantize_input:
                x = int8_lib.Point(self.int8, name="input")(x)
            h = nn.relu(int8_lib.Conv(c, dtype=self.dtype, mode=self.int8, name="Conv_0")(x))
        h = int8_lib.Point(self.int8, name="relu")(h)
        return x + int8_lib.Conv(c, dtype=self.dtype, mode=self.int8, name="Conv_1")(h)


def pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
    """Edge-pads [B, H, W, C] at the bottom/right to multiples of `multiple`.

    Edge mode works for any size, 1x1 included (reflection needs 2 pixels).
    Written as "append multiple - 1 copies of the last row, keep the first
    multiple * ((H + multiple - 1) // multiple)" so that a symbolic H
    (jax.export, the ONNX export with dynamic sizes) gives a padded size that
    is provably divisible, from operations the ONNX converter lowers exactly.
    """
    b, h, w, c = x.shape
    hp, wp = multiple * ((h + multiple - 1) // multiple), multiple * ((w + multiple - 1) // multiple)  # Hp, Wp
    if multiple == 1 or all(isinstance(d, int) for d in (h, w)) and (hp, wp) == (h, w):
        return x  # (symbolic sizes always take the general path)
    last_row = jax.lax.slice_in_dim(x, h - 1, h, axis=1)  # [B, 1, W, C]
    x = jax.lax.concatenate([x, jnp.broadcast_to(last_row, (b, multiple - 1, w, c))], 1)
    x = jax.lax.slice_in_dim(x, 0, hp, axis=1)  # [B, Hp, W, C]
    last_col = jax.lax.slice_in_dim(x, w - 1, w, axis=2)  # [B, Hp, 1, C]
    x = jax.lax.concatenate([x, jnp.broadcast_to(last_col, (b, hp, multiple - 1, c))], 2)
    return jax.lax.slice_in_dim(x, 0, wp, axis=2)


# Named sizes of the architecture (`create_model(variant)`); models/registry.py's table has their cost.
VARIANTS: Dict[str, Dict[str, Any]] = {
    "tiny": dict(widths=(16, 32, 64), blocks=1, bottleneck_blocks=1, qga_hidden=16),
    "small": dict(widths=(32, 64, 128), blocks=2, bottleneck_blocks=2, qga_hidden=32),
    "base": dict(widths=(64, 128, 256, 256), blocks=2, bottleneck_blocks=4, qga_hidden=64),
}


class QGAC(nn.Module):
    """Quantization-guided artifact correction network.

    Attributes:
      channels: image channels, 1 (grey) or 3 (colour).
      widths: features per resolution; widths[0] at full size, widths[l] after
        the l-th stride-2 downsampling, so there are len(widths) - 1 levels.
      blocks: residual blocks per level in the encoder and in the decoder.
      bottleneck_blocks: residual blocks at the lowest resolution.
      qga_hidden: hidden channels of each QGA attention subnetwork.
      upsample: "transpose" (stride-2 transposed conv) or "pixel_shuffle".
      fuse: how a skip joins the decoder, "concat" (then 1x1 conv) or "add".
      zero_head: zero-initialise the residual head so the net starts as identity.
      dtype: compute dtype (bfloat16 on TPU/GPU); parameters stay float32.
      int8: "" (float), "fake" (the int8 graph's arithmetic simulated, for quantization-aware fine-tuning; adds a
        range parameter per quantized tensor) or "observe" (float, those tensors sown): models/int8.py.
    """

    channels: int = 3
    widths: Sequence[int] = (32, 64, 128)
    blocks: int = 2
    bottleneck_blocks: int = 2
    qga_hidden: int = 32
    upsample: str = "transpose"
    fuse: str = "concat"
    zero_head: bool = True
    dtype: Any = jnp.float32
    int8: str = ""
    # Modules whose convolutions stay float32 in the int8 graph (prefixes of module paths): the stem reads the
    # image and the Q-map, the QGA blocks' sigmoids and the head are the most sensitive (docs/algorithm.md); the
    # first convolution of the full-resolution blocks that read the image-scale stream (the stem's and fuse0's
    # outputs) cost smooth photos most of what int8 lost with those alone (docs/performance.md).
    KEEP_FLOAT: ClassVar[Tuple[str, ...]] = ("stem", "qga", "fuse0", "head", "enc0_res0/Conv_0", "dec0_res0/Conv_0",
                                             "dec0_res1/Conv_0")

    def __post_init__(self):
        if self.int8 not in int8_lib.MODES:
            raise ValueError(f"unknown int8 mode {self.int8!r}; use one of {int8_lib.MODES}")
        if self.int8 and (self.upsample != "transpose" or self.fuse != "concat"):
            raise ValueError("int8 simulates the shipped architecture: upsample 'transpose', fuse 'concat'")
        super().__post_init__()

    @property
    def levels(self) -> int:
        return len(self.widths) - 1

    def _upsample(self, x, features, name):
        if self.upsample == "transpose":
            return ConvTranspose2x2(features, dtype=self.dtype, name=name)(x)
        if self.upsample == "pixel_shuffle":
            x = nn.Conv(4 * features, (3, 3), dtype=self.dtype, name=name)(x)
            b, h, w, _ = x.shape
            x = x.reshape(b, h, w, 2, 2, features).transpose(0, 1, 3, 2, 4, 5)
            return x.reshape(b, 2 * h, 2 * w, features)
        raise ValueError(f"unknown upsample {self.upsample!r}; use 'transpose' or 'pixel_shuffle'")

    def _conv(self, features, kernel, name, strides=(1, 1)):
        """A convolution of the network: int8 (`int8_lib.Conv`) under `int8` unless its module stays float."""
        if self.int8 and not name.startswith(self.KEEP_FLOAT):
            return int8_lib.Conv(features, kernel, strides, dtype=self.dtype, mode=self.int8, name=name)
        return nn.Conv(features, kernel, strides=strides, dtype=self.dtype, name=name)

    def _point(self, x, name, reader=None):
        """x as a quantized tensor where the int8 graph quantizes it: the input of `reader` (default `name`), an
        int8 convolution."""
        if self.int8 and not (reader or name).startswith(self.KEEP_FLOAT):
            return int8_lib.Point(self.int8, name=f"{name}_input")(x)
        return x

    def _res(self, x, name, quantized_input=False):
        float_first = f"{name}/Conv_0".startswith(self.KEEP_FLOAT)
        return ResBlock(self.dtype, self.int8, not quantized_input, float_first, name=name)(x)

    def _fuse(self, x, skip, name):
        if self.fuse == "add":
            return x + skip
        if self.fuse == "concat":
            fused = self._point(jnp.concatenate([x, skip], -1), name)
            return self._conv(x.shape[-1], (1, 1), name)(fused)
        raise ValueError(f"unknown fuse {self.fuse!r}; use 'concat' or 'add'")

    @nn.compact
    def __call__(self, y: jax.Array, qmap: jax.Array) -> jax.Array:
        """y [B, H, W, channels] in [0, 1], qmap [B, H, W, K] -> restored [B, H, W, channels] float32."""
        if y.ndim != 4 or y.shape[-1] != self.channels:
            raise ValueError(f"expected image [B, H, W, {self.channels}], got {y.shape}")
        if qmap.ndim != 4 or qmap.shape[:3] != y.shape[:3]:
            raise ValueError(f"Q-map {qmap.shape} must be [B, H, W, K] with the image's B, H, W {y.shape[:3]}")
        height, width = y.shape[1:3]
        multiple = 2**self.levels
        y32 = y.astype(jnp.float32)
        yp = pad_to_multiple(y32, multiple)  # [B, Hp, Wp, C]
        qp = pad_to_multiple(qmap.astype(jnp.float32), multiple)  # [B, Hp, Wp, K]

        x = jnp.concatenate([yp, qp], axis=-1).astype(self.dtype)
        x = self._conv(self.widths[0], (3, 3), "stem")(x)
        first = "enc0_res0" if self.levels else "mid_res0"
        x = self._point(x, first, f"{first}/Conv_0")  # the skip reads it quantized too
        skips = [x]  # full-resolution skip: no QGA (QGA follows each downsampling)
        for level in range(self.levels):
            for i in range(self.blocks):  # the stem's or a downsampling's output: quantized already
                x = self._res(x, f"enc{level}_res{i}", quantized_input=i == 0)
            name = f"down{level}"
            x = self._conv(self.widths[level + 1], (3, 3), name, strides=(2, 2))(self._point(x, name))
            q = pool_qmap(qp, 2 ** (level + 1))
            weighted, _ = QGABlock(self.qga_hidden, self.dtype, name=f"qga{level}")(x, q)
            skips.append(weighted)

        for i in range(self.bottleneck_blocks):
            x = self._res(x, f"mid_res{i}", quantized_input=i == 0)

        for level in reversed(range(self.levels)):
            x = self._fuse(x, skips[level + 1], f"fuse{level + 1}")
            for i in range(self.blocks):
                x = self._res(x, f"dec{level + 1}_res{i}", quantized_input=i == 0)
            x = self._upsample(x, self.widths[level], f"up{level}")
        x = self._fuse(x, skips[0], "fuse0")
        for i in range(self.blocks):
            x = self._res(x, f"dec0_res{i}")

        head_init = nn.initializers.zeros if self.zero_head else nn.linear.default_kernel_init
        residual = nn.Conv(self.channels, (3, 3), dtype=self.dtype, kernel_init=head_init, name="head")(x)
        out = yp + residual.astype(jnp.float32)
        # Slices, not indexing (a gather there): they keep dynamic sizes exact in the ONNX export.
        return jax.lax.slice_in_dim(jax.lax.slice_in_dim(out, 0, height, axis=1), 0, width, axis=2)
MODEL = QGAC  # what models.ARCHITECTURES builds for 'qgac'
