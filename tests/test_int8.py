"""models/int8.py: the int8 graph's arithmetic simulated in the Flax forward pass (quantization-aware training)."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qgac_jax.models import QGAC, create_model, init_params, int8
from conftest import natural_image


def _pairs(channels=3, n=2, size=48, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        image = natural_image(size, size, seed=seed + i)[None].astype(np.float32) / 255
        image = image if channels == 3 else image[..., :1]
        qmap = np.full(image.shape[:3] + (2 if channels == 3 else 1,), 0.05 + 0.1 * rng.random(), np.float32)
        out.append((image, qmap))
    return out


@pytest.fixture(scope="module")
def tiny():
    model = create_model("tiny", channels=3)
    params = init_params(model, jax.random.key(0), 32, 32)
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(1), p.shape), params)  # a live head
    return model, params


def test_uint8_grid_is_onnx_runtimes():
    qu = pytest.importorskip("onnxruntime.quantization.quant_utils", reason="ONNX Runtime is in the extra `onnx`")
    for lo, hi in ((-2.0034, 0.9458), (0.0, 6.57), (0.3, 1.2), (-5.3, -0.2), (-0.0049, 12.9)):
        zero, scale = qu.compute_scale_zp(np.float32(lo), np.float32(hi), np.uint8(0), np.uint8(255))[:2]
        ours_scale, ours_zero = int8.uint8_grid(jnp.float32(lo), jnp.float32(hi))
        assert float(ours_scale) == pytest.approx(float(scale), rel=1e-6)
        assert float(ours_zero) == float(zero)


def test_fake_uint8_matches_onnx_runtimes_quantize_and_dequantize():
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is in the extra `onnx`")
    from onnx import TensorProto, helper

    lo, hi = -1.7, 2.3
    scale, zero = (np.float32(v) for v in int8.uint8_grid(jnp.float32(lo), jnp.float32(hi)))
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [scale]),
         helper.make_tensor("z", TensorProto.UINT8, [], [int(zero)])])
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                   .SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-3, 4, 10_000).astype(np.float32)
    theirs = session.run(None, {"x": x})[0]
    ours = np.asarray(int8.fake_uint8(jnp.asarray(x), lo, hi))
    assert np.mean(ours == theirs) > 0.999  # the rest: ties rounded on the other side of half a step
    np.testing.assert_allclose(ours, theirs, atol=float(scale) * 1.001)
    assert len(np.unique(ours)) <= 256 and ours.min() >= lo - scale and ours.max() <= hi + scale


def test_straight_through_gradients_pass_inside_the_range_and_stop_outside():
    x = jnp.array([-3.0, -0.5, 0.0, 0.7, 2.9, 5.0])
    grad = jax.grad(lambda v: jnp.sum(int8.fake_uint8(v, -1.0, 3.0)))(x)
    np.testing.assert_array_equal(np.asarray(grad), [0, 1, 1, 1, 1, 0])
    d_lo, d_hi = jax.grad(lambda lo, hi: jnp.sum(int8.fake_uint8(x, lo, hi) ** 2), argnums=(0, 1))(-1.0, 3.0)
    assert float(d_lo) < 0 < float(d_hi)  # clipped values pull the range out to them


def test_int8_kernel_is_symmetric_per_output_channel():
    kernel = jax.random.normal(jax.random.key(0), (3, 3, 4, 5)) * jnp.array([0.01, 0.1, 1.0, 3.0, 0.5])
    fake = np.asarray(int8.fake_int8_kernel(kernel))
    scale = np.abs(np.asarray(kernel)).max(axis=(0, 1, 2)) / 127
    steps = fake / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(steps).max() == pytest.approx(127, abs=1e-3)
    np.testing.assert_allclose(fake, kernel, atol=float(scale.max()) / 2 + 1e-7)
    assert not np.allclose(fake, kernel)


def test_float_model_ignores_ranges_and_fake_model_reads_them(tiny):
    model, params = tiny
    pairs = _pairs()
    p8 = int8.calibrate(model, params, pairs)
    flat, flat8 = (flax.traverse_util.flatten_dict(p) for p in (params, p8))
    assert set(flat8) - set(flat) == {k for k in flat8 if k[-1] == int8.RANGE} and set(flat) <= set(flat8)
    assert all(np.array_equal(flat[k], flat8[k]) for k in flat)
    y, q = pairs[0]
    plain = model.apply({"params": params}, y, q)
    np.testing.assert_array_equal(model.apply({"params": p8}, y, q), plain)
    back = flax.traverse_util.flatten_dict(int8.float_params(p8))
    assert set(back) == set(flat) and all(np.array_equal(back[k], flat[k]) for k in flat)
    fake = model.clone(int8="fake").apply({"params": p8}, y, q)
    error = float(jnp.sqrt(jnp.mean((fake - plain) ** 2)))
    assert 0 < error < 0.1 * float(jnp.sqrt(jnp.mean((plain - y) ** 2)))  # rounded, and close beside its residual


def test_calibration_is_the_mean_of_each_images_min_and_max(tiny):
    model, params = tiny
    pairs = _pairs(n=3)
    seen = [int8.observe(model, params, y, q) for y, q in pairs]
    ranges = int8.ranges(int8.calibrate(model, params, pairs))
    assert set(ranges) == set(seen[0]) and len(ranges) > 10
    for name, (lo, hi) in ranges.items():
        assert lo == pytest.approx(np.mean([s[name].min() for s in seen]), rel=1e-5, abs=1e-6)
        assert hi == pytest.approx(np.mean([s[name].max() for s in seen]), rel=1e-5, abs=1e-6)


def test_a_spread_takes_percentiles_of_the_images_extremes(tiny):
    model, params = tiny
    pairs = _pairs(n=5)
    seen = [int8.observe(model, params, y, q) for y, q in pairs]
    mean, wide = (int8.ranges(int8.calibrate(model, params, pairs, spread=s)) for s in (0, 10))
    for name, (lo, hi) in wide.items():
        assert lo == pytest.approx(np.percentile([s[name].min() for s in seen], 10), rel=1e-5, abs=1e-6)
        assert hi == pytest.approx(np.percentile([s[name].max() for s in seen], 90), rel=1e-5, abs=1e-6)
        assert lo <= mean[name][0] + 1e-6 or hi >= mean[name][1] - 1e-6


def test_quantized_tensors_are_those_of_the_int8_convolutions_each_once(tiny):
    model, params = tiny
    names = set(int8.observe(model, params, *_pairs(n=1)[0]))
    assert not any(n.startswith(QGAC.KEEP_FLOAT) for n in names)  # stem, QGA, fuse0, head stay float
    # tiny: 1 block per level, 2 levels; a ResBlock's two outputs and its ReLU, and its input where no int8
    # convolution made it; each downsampling's input and output; fuse1, fuse2's input and output.
    assert {"down0_input", "down0/output", "fuse1_input", "fuse1/output", "enc0_res0/relu",
            "enc0_res0/Conv_1/output", "enc1_res0/Conv_0/output", "dec1_res0/relu", "dec0_res0/relu"} <= names
    assert "enc1_res0/input" not in names and "dec1_res0/input" not in names  # down1/fuse1 made them
    # a full-resolution block's first convolution stays float, and so its input: the stem's and fuse0's outputs
    assert not {"enc0_res0_input", "enc0_res0/Conv_0/output", "dec0_res0/input", "dec0_res0/Conv_0/output"} & names


def test_bad_int8_modes_are_refused():
    with pytest.raises(ValueError, match="int8 mode"):
        create_model("tiny", int8="int4").init(jax.random.key(0), *(jnp.zeros((1, 16, 16, c)) for c in (3, 2)))
    with pytest.raises(ValueError, match="upsample"):
        create_model("tiny", int8="fake", upsample="pixel_shuffle").init(
            jax.random.key(0), *(jnp.zeros((1, 16, 16, c)) for c in (3, 2)))


def test_a_fake_int8_model_trains(tiny):
    """One gradient step moves weights and ranges and lowers the loss (the straight-through path is connected)."""
    model, params = tiny
    pairs = _pairs(n=1, size=32)
    fake = model.clone(int8="fake")
    p8 = int8.calibrate(model, params, pairs)
    y, q = pairs[0]
    target = jnp.clip(y + 0.02, 0, 1)

    def loss(p):
        return jnp.mean(jnp.abs(fake.apply({"params": p}, y, q) - target))

    value, grads = jax.jit(jax.value_and_grad(loss))(p8)  # (compiled: op by op, the fake-int8 graph takes 30 s)
    ranges = [g for k, g in flax.traverse_util.flatten_dict(grads).items() if k[-1] == int8.RANGE]
    assert any(float(jnp.abs(g).max()) > 0 for g in ranges)
    stepped = jax.tree.map(lambda p, g: p - 1e-3 * jnp.sign(g), p8, grads)
    assert float(jax.jit(loss)(stepped)) < float(value)


def test_an_int8_export_with_ranges_its_network_no_longer_reads_loads_without_them(tiny, tmp_path):
    """An int8 fine-tune exported before the network kept more convolutions float holds ranges of tensors it no
    longer quantizes: those are dropped on loading; any other parameter it lacks a place for is refused."""
    from qgac_jax.models import exports

    model, params = tiny
    params = int8.calibrate(model.clone(int8="fake"), params, _pairs(n=1))
    config = {"variant": "tiny", "channels": 3, "dtype": "float32", "overrides": {"int8": "fake"}}
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
    stale = {**flat, ("enc0_res0_input", int8.RANGE): np.array([-1.0, 1.0], np.float32)}
    exports.export_params(tmp_path / "old", flax.traverse_util.unflatten_dict(stale), config)
    _, loaded, _ = exports.load_export(tmp_path / "old")
    assert int8.ranges(loaded).keys() == int8.ranges(params).keys() and "enc0_res0_input" not in int8.ranges(loaded)
    for key, value in flax.traverse_util.flatten_dict(flax.core.unfreeze(loaded)).items():
        np.testing.assert_array_equal(value, flat[key])
    alien = {**flat, ("extra_conv", "kernel"): np.ones((3, 3, 4, 4), np.float32)}
    exports.export_params(tmp_path / "alien", flax.traverse_util.unflatten_dict(alien), config)
    with pytest.raises(ValueError):
        exports.load_export(tmp_path / "alien")
