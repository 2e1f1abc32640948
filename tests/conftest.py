"""Shared test fixtures: built-in and generated images, paths to ../shared/data."""

import io
import os
import pathlib
import shutil
import tempfile

import numpy as np
import pytest
from PIL import Image

# TF must never grab an accelerator or print start-up noise in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# restore's default backend on a CPU is ONNX Runtime when the extra is installed, which converts each model
# once (about 20 s). Tests pin JAX, subprocesses included; tests/test_onnx_graph.py exercises the default.
os.environ.setdefault("QGAC_BACKEND", "jax")

# One XLA compilation cache for the session, shared with every subprocess the tests start: the suite
# compiles the same networks in many processes (each CLI and training run). It starts empty, so each
# program is still compiled once per session.
_XLA_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # else a caller's (or a parent pytest's) cache
    _XLA_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="qgac_jax_xla_cache_")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")


# XLA's CPU code generation with LLVM at -O1 instead of -O2, for the suite and every process it starts:
# tests run a few steps of small networks, so compiling is most of their time, and -O1 halves a short
# training run compiled from scratch. A train step's loss and metrics came out equal to -O2's to the last bit
# (-O0 compiles a little faster but sums without vectorising, which moves float32 means by 1e-4).
# The benchmarks, and users, keep XLA's defaults. Subprocess environments build their flags with xla_flags().
TEST_XLA_FLAGS = "--xla_backend_optimization_level=1"


def xla_flags(devices: int = 1) -> str:
    """XLA_FLAGS for a subprocess of the suite with `devices` CPU devices."""
    return f"{TEST_XLA_FLAGS} --xla_force_host_platform_device_count={devices}"


if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()


def pytest_sessionfinish(session, exitstatus):
    if _XLA_CACHE:
        shutil.rmtree(_XLA_CACHE, ignore_errors=True)


SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> pathlib.Path:
    """Path to ../shared/data/NAME, or a skip with the reason when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (only a development checkout has ../shared/data)")
    return path


def natural_image(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """A deterministic [H, W, 3] uint8 picture with edges, gradients and texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [
            128 + 90 * np.sin(x / 9.0) * np.cos(y / 13.0),
            255 * (x / max(width - 1, 1)),
            np.where((x // 20 + y // 20) % 2 == 0, 200.0, 40.0),
        ],
        axis=-1,
    )
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def encoded(img: np.ndarray, image_format: str, **save_kwargs) -> bytes:
    """The file Pillow writes for `img` in `image_format` (WEBP, AVIF, HEIF with pillow-heif registered)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=image_format, **save_kwargs)
    return buf.getvalue()


def data_config(**kw):
    """A small DataConfig for pipeline tests: built-in photos, 32x32 patches, batches of 4, single JPEGs of
    IJG tables at qualities 5..95 (what a test adds, it names)."""
    from qgac_jax import data

    return data.DataConfig(**{**dict(sources=("builtin",), patch_size=32, batch_size=4, q_min=5, q_max=95,
                                     p_random_table=0.0, p_double=0.0), **kw})


def take_batches(config, n_batches=1, **kw):
    """The first `n_batches` batches of host 0 of 1 (unless told otherwise)."""
    from qgac_jax import data

    kw.setdefault("process_index", 0)
    kw.setdefault("process_count", 1)
    it = data.train_batches(config, **kw)
    return [next(it) for _ in range(n_batches)]


def coffee() -> np.ndarray:
    """scikit-image's coffee photo, 400x600 RGB (the test skips without scikit-image)."""
    skimage_data = pytest.importorskip("skimage.data", reason="the photo comes with scikit-image")
    return skimage_data.coffee()


def jpeg_bytes(img: np.ndarray, **save_kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", **save_kwargs)
    return buf.getvalue()


@pytest.fixture
def rgb_image() -> np.ndarray:
    return natural_image()


def _make_export(path, channels: int):
    """A real Orbax export of a small model whose head is not zero (so it changes images)."""
    import jax

    from qgac_jax import models
    from qgac_jax.models import exports

    overrides = dict(widths=(8, 16), blocks=1, bottleneck_blocks=1, qga_hidden=4, zero_head=False)
    model = models.create_model("tiny", channels=channels, **overrides)
    params = models.init_params(model, jax.random.key(channels))
    params["head"]["kernel"] = params["head"]["kernel"] * 0.05  # a gentle residual, like a trained model
    exports.export_params(path, params, {"variant": "tiny", "channels": channels, "dtype": "float32",
                                               "overrides": overrides})
    return path


@pytest.fixture(scope="session")
def colour_export(tmp_path_factory):
    return _make_export(tmp_path_factory.mktemp("colour") / "export", 3)


@pytest.fixture(scope="session")
def grey_export(tmp_path_factory):
    return _make_export(tmp_path_factory.mktemp("grey") / "export", 1)


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    """Six small images of assorted formats and modes, one smaller than the patch."""
    root = tmp_path_factory.mktemp("images")
    (root / "sub").mkdir()
    for i, (name, size) in enumerate([("a.png", (40, 50)), ("b.bmp", (64, 48)), ("sub/c.tif", (33, 70)),
                                      ("d.jpg", (56, 56)), ("e.png", (20, 12)), ("sub/f.webp", (48, 40))]):
        img = Image.fromarray(natural_image(*size, seed=i))
        if name == "e.png":
            img = img.convert("L")
        img.save(root / name)
    return root


def display_p3_profile() -> bytes:
    """An ICC v2 profile of Display P3 (Apple's primaries adapted to D50, the sRGB transfer curve), built
    byte by byte: what a phone writes into its photos. LittleCMS (Pillow's ImageCms) reads it as a real profile."""
    import struct

    def s15(v):
        return struct.pack(">i", int(round(v * 65536)))

    def xyz(x, y, z):
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    def text_desc(text):
        raw = text.encode("ascii") + b"\0"
        return b"desc" + b"\0" * 4 + struct.pack(">I", len(raw)) + raw + b"\0" * 4 + b"\0" * 4 + b"\0" * 3 + b"\0" * 67

    c = np.linspace(0, 1, 1024)
    curve = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    trc = b"curv" + b"\0" * 4 + struct.pack(">I", 1024) + np.round(curve * 65535).astype(">u2").tobytes()
    tags = [(b"desc", text_desc("Display P3")), (b"cprt", b"text" + b"\0" * 4 + b"No copyright, test profile\0"),
            (b"wtpt", xyz(0.96420, 1.0, 0.82491)), (b"rXYZ", xyz(0.51512, 0.24120, -0.00105)),
            (b"gXYZ", xyz(0.29198, 0.69225, 0.04189)), (b"bXYZ", xyz(0.15710, 0.06657, 0.78407)),
            (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp"
              + b"APPL" + b"\0" * 4 + b"\0" * 8 + b"\0" * 8 + b"\0" * 4 + s15(0.9642) + s15(1.0) + s15(0.8249)
              + b"lcms" + b"\0" * 44)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data
