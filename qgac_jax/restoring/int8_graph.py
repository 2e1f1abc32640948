"""int8 ONNX graphs: the cached float32 graph quantized for CPUs with int8 arithmetic (VNNI, AMX).

ONNX Runtime's static quantization: QuantizeLinear / DequantizeLinear pairs
around each convolution, int8 weights per output channel, uint8 activations
whose ranges are calibrated on the JPEG crops shipped in
`pretrained/calibration` (public-domain and CC0 photos) compressed again at
qualities 10..90, with the Q-maps of those files. The convolutions of the
modules in KEEP_FLOAT stay float32: the stem reads the image and the Q-map,
the QGA blocks read quantization steps spread over two orders of magnitude
and write a sigmoid's argument, the full-resolution fuse and the head carry
the residual's small values next to large ones. They hold a few percent of the
arithmetic and most of int8's error (docs/performance.md ranks every
convolution). Each graph convolution is matched to its Flax module by its
weights, so the rule holds for any width or depth.

The graph keeps the float32 graph's tensor contract (`onnx_graph`): float32
image and qmap in, float32 restored out.
"""

from __future__ import annotations

import hashlib
import io
import pathlib
import tempfile
from typing import Callable, Dict, Iterator, List

import numpy as np

from qgac_jax.codecs import jpeg
from qgac_jax.restoring import onnx_graph, shipped

RECIPE = "qdq/conv/per-channel/u8s8/moving-average/float-stem-qga-fuse0-head-v1"  # a new recipe gets new cached graphs
CALIBRATION = shipped.ROOT / "calibration"
KEEP_FLOAT = ("stem", "qga", "fuse0", "head")  # prefixes of QGAC's module names (models/qgac.py)


def calibration_files() -> List[pathlib.Path]:
    files = sorted(CALIBRATION.glob("*.jpg"))
    if not files:
        raise ValueError(f"the calibration photos are missing from {CALIBRATION}; reinstall qgac_jax")
    return files


def calibration_feeds(channels: int) -> List[Dict[str, np.ndarray]]:
    """Graph inputs (NCHW) for calibration: each shipped crop compressed again at its own quality in 10..90."""
    from PIL import Image

    files = calibration_files()
    feeds = []
    for i, path in enumerate(files):
        image = Image.open(path).convert("RGB" if channels == 3 else "L")
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=int(round(10 + 80 * i / max(1, len(files) - 1))))
        data = buf.getvalue()
        pixels = np.asarray(Image.open(io.BytesIO(data)), np.float32).reshape(image.height, image.width, -1) / 255
        qmap = jpeg.read_quantization(data).qmap(image.height, image.width).astype(np.float32)
        feeds.append({"image": pixels.transpose(2, 0, 1)[None].copy(), "qmap": qmap.transpose(2, 0, 1)[None].copy()})
    return feeds


def kept_float(model, params) -> List[str]:
    """Names of the Conv nodes of an ONNX ModelProto whose weights belong to a KEEP_FLOAT module of `params`."""
    import jax
    from onnx import numpy_helper

    keep = set()
    for path, value in jax.tree_util.tree_flatten_with_path(params)[0]:
        module = str(getattr(path[0], "key", path[0]))
        if getattr(path[-1], "key", None) == "kernel" and np.ndim(value) == 4 and module.startswith(KEEP_FLOAT):
            keep.add(np.asarray(value, np.float32).transpose(3, 2, 0, 1).tobytes())  # HWIO -> ONNX's OIHW
    weights = {init.name: init for init in model.graph.initializer}
    kept = [node.name for node in model.graph.node if node.op_type == "Conv" and node.input[1] in weights
            and numpy_helper.to_array(weights[node.input[1]]).astype(np.float32).tobytes() in keep]
    if len(kept) != len(keep):
        raise ValueError(f"found {len(kept)} of the {len(keep)} float32 convolutions in the ONNX graph")
    return kept


def preprocess(float_path, pre_path) -> None:
    """ONNX Runtime's pre-processing of a float32 graph before quantization (shape inference, folding)."""
    try:
        from onnxruntime.quantization import quant_pre_process
    except ImportError as err:
        raise onnx_graph.missing_extra(err) from None
    quant_pre_process(str(float_path), str(pre_path), skip_symbolic_shape=True)


def quantize_preprocessed(pre_path, out_path, feeds: List[Dict[str, np.ndarray]], keep_float: List[str]) -> None:
    """RECIPE itself: the preprocessed graph at `pre_path`, calibrated on `feeds` with the Conv nodes named in
    `keep_float` left float32, written to `out_path` by ONNX Runtime (benchmarks/int8_sensitivity.py varies
    `keep_float` and `feeds` through this)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds: Iterator[Dict[str, np.ndarray]] = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(str(pre_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                    nodes_to_exclude=list(keep_float), extra_options={"CalibMovingAverage": True})


def quantize(float_path, out_path, params) -> None:
    """Writes the int8 graph of the float32 graph at `float_path` (converted from `params`) to `out_path`
    (whole or not at all)."""
    try:
        import onnx
    except ImportError as err:
        raise onnx_graph.missing_extra(err) from None
    with tempfile.TemporaryDirectory(prefix="qgac-int8-") as tmp:
        pre, out = pathlib.Path(tmp) / "pre.onnx", pathlib.Path(tmp) / "int8.onnx"
        preprocess(float_path, pre)
        model = onnx.load(str(pre))
        channels = int(model.graph.input[0].type.tensor_type.shape.dim[1].dim_value)
        inputs = {i.name for i in model.graph.input}  # a graph exported with --quality has no qmap
        feeds = [{k: v for k, v in feed.items() if k in inputs} for feed in calibration_feeds(channels)]
        quantize_preprocessed(pre, out, feeds, kept_float(model, params))
        result = onnx.load(str(out))
        result.metadata_props.append(onnx.StringStringEntryProto(key="qgac_jax.precision", value="int8 " + RECIPE))
        onnx_graph.save(result, out_path)


def _recipe_digest() -> str:
    h = hashlib.sha256(RECIPE.encode())
    for path in calibration_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def cached(export_path, log: Callable[..., None] = print) -> pathlib.Path:
    """The int8 graph of an export, quantized from its cached float32 graph on first use and kept beside it
    under the same rules (`onnx_graph.cached`: a hash sidecar, a damaged graph rebuilt, CacheNotWritable)."""
    from qgac_jax.models import exports

    float_path = onnx_graph.cached(export_path, log)
    out = float_path.with_name(f"{float_path.stem}.int8-{_recipe_digest()}.onnx")

    def build(path):
        quantize(float_path, path, exports.load_restoration_export(export_path)[1])

    return onnx_graph.build_cached(out, build, "quantizing the ONNX graph to int8", log)
