"""int8 ONNX graphs: the cached float32 graph quantized for CPUs with int8 arithmetic (VNNI, AMX).

ONNX Runtime's static quantization: QuantizeLinear / DequantizeLinear pairs
around each convolution, int8 weights per output channel, uint8 activations
whose ranges are calibrated on the JPEG crops shipped in
`pretrained/calibration` (public-domain and CC0 photos) compressed again at
qualities 10..90, with the Q-maps of those files. The convolutions of the
modules in the network's KEEP_FLOAT stay float32: the stem reads the image and the Q-map,
the QGA blocks read quantization steps spread over two orders of magnitude
and write a sigmoid's argument, the full-resolution fuse and the head carry
the residual's small values next to large ones, and the first convolution of
the full-resolution blocks reads the image-scale stream, whose uint8 steps
show on smooth photos. They hold a sixth of the arithmetic and most of
int8's error (docs/performance.md ranks every convolution). Each graph
convolution is matched to its Flax module by its weights, so the rule holds
for any width or depth. A model fine-tuned for int8 brings its ranges, which
the graph widens by WIDEN (`models.int8.widened`).

The graph keeps the float32 graph's tensor contract (`onnx_graph`): float32
image and qmap in, float32 restored out.
"""

from __future__ import annotations

import hashlib
import io
import pathlib
import tempfile
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from qgac_jax.codecs import jpeg
from qgac_jax.graphs import onnx_graph
from qgac_jax.models import shipped

# A new recipe gets new cached graphs (both are in the cache's names).
RECIPE = "qdq/conv/per-channel/u8s8/moving-average/float-stem-qga-fuse0-head-fullres-conv0-v2"
WIDEN = 1.5  # a learned range, times this: the margin large sharp photos need (docs/performance.md)
RECIPE_LEARNED = f"qdq/conv/per-channel/u8s8/learned-ranges-x{WIDEN:g}/float-stem-qga-fuse0-head-fullres-conv0-v2"
CALIBRATION = shipped.ROOT / "calibration"


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


def calibration_pairs(channels: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """`calibration_feeds` as the Flax network takes them: (image [1, H, W, C], qmap [1, H, W, K])."""
    return [(f["image"].transpose(0, 2, 3, 1), f["qmap"].transpose(0, 2, 3, 1)) for f in calibration_feeds(channels)]


def kept_float(model, params, keep_float) -> List[str]:
    """Names of the Conv nodes of an ONNX ModelProto whose weights belong to a `keep_float` module of `params`
    (the network's KEEP_FLOAT: prefixes of its module paths, 'enc0_res0/Conv_0')."""
    import jax
    from onnx import numpy_helper

    keep = set()
    for path, value in jax.tree_util.tree_flatten_with_path(params)[0]:
        module = "/".join(str(getattr(p, "key", p)) for p in path[:-1])
        if getattr(path[-1], "key", None) == "kernel" and np.ndim(value) == 4 and module.startswith(tuple(keep_float)):
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


def _probe(channels: int, quality: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """A real photo and its Q-map (the IJG tables of `quality` at 4:2:0 where the graph tiles them itself)."""
    image, qmap = calibration_pairs(channels)[len(calibration_files()) // 4]
    if quality is not None:
        from qgac_jax.codecs import jpeg_tables

        tables = jpeg_tables.ijg_tables(quality)
        qmap = jpeg_tables.qmap(tables[0], tables[1] if channels == 3 else None, *image.shape[1:3], "4:2:0")[None]
    return image, np.asarray(qmap, np.float32)


def learned_ranges(graph, keep_float: List[str], model, params, quality: Optional[int] = None) -> Dict[str, tuple]:
    """{graph tensor: (lo, hi)} of the ranges a quantization-aware model learned (`models.int8`): each tensor
    ONNX Runtime quantizes (input and output of each int8 convolution) matched, by its values on a real photo,
    to the one Flax tensor its range belongs to; a ValueError where they are not one to one."""
    import onnx
    import onnxruntime as ort

    consts = {i.name for i in graph.graph.initializer}
    tensors = list(dict.fromkeys(t for node in graph.graph.node if node.op_type == "Conv"
                                 and node.name not in keep_float for t in (node.input[0], node.output[0])
                                 if t not in consts))
    from qgac_jax.models import int8 as int8_lib

    probed = onnx.ModelProto()
    probed.CopyFrom(graph)
    probed.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors)
    image, qmap = _probe(model.channels, quality)
    feed = {"image": image.transpose(0, 3, 1, 2).copy(), "qmap": qmap.transpose(0, 3, 1, 2).copy()}
    feed = {i.name: feed[i.name] for i in graph.graph.input}
    session = ort.InferenceSession(probed.SerializeToString(), providers=["CPUExecutionProvider"])
    values = dict(zip((o.name for o in session.get_outputs()), session.run(None, feed)))
    points, learned = int8_lib.observe(model, params, image, qmap), int8_lib.ranges(params)
    found: Dict[str, tuple] = {}
    for tensor in tensors:
        v = values[tensor].transpose(0, 2, 3, 1)  # NCHW -> the Flax tensor's NHWC
        like = [name for name, w in points.items()
                if w.shape == v.shape and np.max(np.abs(w - v)) <= 1e-3 * (1 + np.max(np.abs(v)))]
        if len(like) != 1:
            raise ValueError(f"the int8 graph's tensor {tensor} matches {len(like)} quantized tensors of the model")
        found[tensor] = tuple(float(x) for x in learned[like[0]])
    if len(found) != len(points):
        raise ValueError(f"the model quantizes {len(points)} tensors, the int8 graph {len(found)}")
    return found


def quantize_with_ranges(pre_path, out_path, ranges: Dict[str, tuple], keep_float: List[str]) -> None:
    """The recipe of `quantize_preprocessed` with the activation ranges given (ONNX Runtime's calibration cache)
    instead of calibrated."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    cache = pathlib.Path(out_path).with_name("ranges.json")
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, {
        name: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for name, (lo, hi) in ranges.items()}), cache)
    quantize_static(str(pre_path), str(out_path), None, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                    nodes_to_exclude=list(keep_float), calibration_cache_path=str(cache))


def quantize(float_path, out_path, model, params, quality: Optional[int] = None) -> None:
    """Writes the int8 graph of the float32 graph at `float_path` (converted from `params`, with `quality` if it
    tiles the IJG tables itself) to `out_path` (whole or not at all): with the ranges a quantization-aware model
    learned, else calibrated."""
    try:
        import onnx
    except ImportError as err:
        raise onnx_graph.missing_extra(err) from None
    from qgac_jax.models import int8 as int8_lib

    with tempfile.TemporaryDirectory(prefix="qgac-int8-") as tmp:
        pre, out = pathlib.Path(tmp) / "pre.onnx", pathlib.Path(tmp) / "int8.onnx"
        preprocess(float_path, pre)
        graph = onnx.load(str(pre))
        keep = kept_float(graph, params, model.KEEP_FLOAT)
        if int8_lib.ranges(params):
            recipe = RECIPE_LEARNED
            params = int8_lib.widened(params, WIDEN)
            quantize_with_ranges(pre, out, learned_ranges(graph, keep, model, params, quality), keep)
        else:
            recipe = RECIPE
            channels = int(graph.graph.input[0].type.tensor_type.shape.dim[1].dim_value)
            inputs = {i.name for i in graph.graph.input}  # a graph exported with --quality has no qmap
            feeds = [{k: v for k, v in feed.items() if k in inputs} for feed in calibration_feeds(channels)]
            quantize_preprocessed(pre, out, feeds, keep)
        result = onnx.load(str(out))
        result.metadata_props.append(onnx.StringStringEntryProto(key="qgac_jax.precision", value="int8 " + recipe))
        onnx_graph.save(result, out_path)


def _recipe_digest() -> str:
    h = hashlib.sha256((RECIPE + RECIPE_LEARNED).encode())
    for path in calibration_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def cached(export_path, log: Callable[..., None] = print) -> pathlib.Path:
    """The int8 graph of an export, quantized from its cached float32 graph on first use and kept beside it
    under the same rules (`onnx_graph.cached`: a hash sidecar, a damaged graph rebuilt, CacheNotWritable)."""
    from qgac_jax.models import exports

    export_path = exports.export_dir(export_path)
    name = f"{exports.digest(export_path)}.int8-{_recipe_digest()}.onnx"
    shipped_graph = onnx_graph.shipped_graph(name)
    if shipped_graph is not None:  # (no float graph needed)
        return shipped_graph
    float_path = onnx_graph.cached(export_path, log)
    out = onnx_graph.cache_dir() / name

    def build(path):
        model, params, _ = exports.load_restoration_export(export_path)
        quantize(float_path, path, model, params)

    return onnx_graph.build_cached(out, build, "quantizing the ONNX graph to int8", log)
