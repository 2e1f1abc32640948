"""Host input pipeline: clean photos in, (JPEG-compressed, clean, Q-map) batches out.

Design, and why:
- **An in-memory image bank.** Each host decodes its share of the source
  images once at start-up into one flat uint8 tensor (plus offsets and
  shapes). Training examples are then *index-addressable*: example i of host
  p is a pure function of (seed, p, i). That makes the stream deterministic
  and exactly resumable at any step (no iterator state to checkpoint), and
  keeps PNG decoding out of the hot loop. Cost: host RAM equal to the decoded
  images of that host's shard (DIV2K train HR: about 6.9 GB in all, divided
  by the number of hosts).
- **JPEG inside the tf.data graph.** The IJG path encodes with
  `EncodeJpegVariableQuality` (libjpeg, tensor quality, IJG tables, 4:2:0)
  and decodes with `decode_jpeg(dct_method="INTEGER_ACCURATE")`, bit-exact
  with Pillow, which restore and evaluation use. It runs in tf.data's
  threads, no Python. The random-table path (and 4:4:4 / 4:2:2) goes through
  Pillow's `qtables=` in `tf.numpy_function`, slower but rarer.
- **The Q-map comes from the tables actually used** (gathered from the IJG
  formula by quality, or returned by the Pillow encoder), built by
  `qmap_tf`, the in-graph twin of `quantization.qmap`.

Sources (config string, several may be mixed with weights):
  builtin                            scikit-image's sample photos (no download)
  folder:<path>                      PNG, BMP, TIFF, JPEG, WebP, recursively
  tfds:<name>[/<config>]:<split>     e.g. tfds:div2k/bicubic_x2:train (key 'hr')

Output batches are dicts of float32 arrays: 'compressed' and 'target'
[B, P, P, C] in [0, 1], 'qmap' [B, P, P, K] (steps / 255), and 'quality'
[B] int32 (0 where a random table was used), B being the per-host batch.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import pathlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from qgac_jax import quantization as qz

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp")
# Photographs shipped inside scikit-image's wheel (skimage/data), usable offline.
BUILTIN_COLOUR = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png", "rocket.jpg")
BUILTIN_GREY = ("camera.png", "moon.png", "coins.png", "brick.png", "grass.png", "gravel.png")
# Steps in `qmap` and in the pipeline's output are divided by this.
QMAP_SCALE = qz.QMAP_SCALE
PIPELINES = ("tf.data", "pillow")


def _tf():
    """Imports TensorFlow hidden from every accelerator: it only feeds the host."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banner in users' logs
    try:
        import tensorflow as tf
    except ImportError as err:
        raise ValueError(f"the tf.data pipeline needs TensorFlow, which does not import here ({err}); "
                         "install tensorflow-cpu or set --config.data.pipeline=pillow") from None

    try:
        tf.config.set_visible_devices([], "GPU")
        tf.config.set_visible_devices([], "TPU")
    except (RuntimeError, ValueError):  # already initialised, or no such device type
        pass
    return tf


# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the training stream is made of. Mirrors `config.data` in configs/."""

    sources: Tuple[str, ...] = ("builtin",)
    weights: Optional[Tuple[float, ...]] = None  # per source; None = by image count
    patch_size: int = 128
    batch_size: int = 16  # global; each host yields batch_size // process_count
    grey: bool = False
    q_min: int = 10
    q_max: int = 95
    p_random_table: float = 0.0
    subsampling: str = "4:2:0"
    seed: int = 0
    max_pixels: int = 64_000_000  # per source image; larger files are refused as bombs
    pipeline: str = "tf.data"  # or "pillow": worker processes, no TensorFlow (see pillow_train_batches)
    workers: int = 0  # processes of the "pillow" pipeline; 0 = one per CPU core

    def __post_init__(self):
        if isinstance(self.sources, str):
            object.__setattr__(self, "sources", (self.sources,))
        object.__setattr__(self, "sources", tuple(self.sources))
        if not self.sources:
            raise ValueError("data.sources is empty; give at least one of builtin, folder:<path>, tfds:<name>:<split>")
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
            if len(self.weights) != len(self.sources) or min(self.weights) < 0 or sum(self.weights) <= 0:
                raise ValueError(
                    f"data.weights {self.weights} must give one non-negative weight per source "
                    f"({len(self.sources)}) with a positive sum"
                )
        qz._validate_quality(self.q_min)
        qz._validate_quality(self.q_max)
        if self.q_min > self.q_max:
            raise ValueError(f"data.q_min ({self.q_min}) is above data.q_max ({self.q_max})")
        if not 0.0 <= self.p_random_table <= 1.0:
            raise ValueError(f"data.p_random_table must lie in [0, 1], got {self.p_random_table}")
        if self.subsampling not in qz.PILLOW_SUBSAMPLING:
            raise ValueError(f"data.subsampling must be one of {sorted(qz.PILLOW_SUBSAMPLING)}, got {self.subsampling!r}")
        if self.patch_size < 8 or self.patch_size % 8:
            raise ValueError(f"data.patch_size must be a positive multiple of 8, got {self.patch_size}")
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size must be positive, got {self.batch_size}")
        if self.pipeline not in PIPELINES:
            raise ValueError(f"data.pipeline must be one of {PIPELINES}, got {self.pipeline!r}")
        if self.workers < 0:
            raise ValueError(f"data.workers must be 0 (one per core) or more, got {self.workers}")

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3

    @classmethod
    def from_config(cls, config) -> "DataConfig":
        """From an ml_collections ConfigDict (or dict) holding these fields."""
        d = dict(config)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown data options {sorted(unknown)}; known: {sorted(fields)}")
        return cls(**d)


# ----------------------------------------------------------------------------- image loading


def to_array(img: Image.Image, grey: bool) -> np.ndarray:
    """A decoded PIL image as uint8 [H, W, 1 or 3] (grey: ITU-R BT.601 luma)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = Image.fromarray((np.asarray(img, np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    if grey:
        arr = np.asarray(img.convert("L"))[..., None]
    else:
        arr = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _load_image(path: pathlib.Path, grey: bool, max_pixels: int) -> np.ndarray:
    with Image.open(path) as img:
        if img.width * img.height > max_pixels:
            raise ValueError(f"{img.width}x{img.height} exceeds data.max_pixels={max_pixels}")
        img.load()
        return to_array(img, grey)


def list_images(root) -> List[pathlib.Path]:
    """Image files below `root`, recursively, sorted (a stable order on every host)."""
    root = pathlib.Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist or is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"image folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def builtin_files(grey: bool) -> List[pathlib.Path]:
    """scikit-image's bundled photographs: colour ones, plus the grey ones for grey models."""
    import skimage.data

    root = pathlib.Path(skimage.data.__file__).parent
    names = BUILTIN_COLOUR + (BUILTIN_GREY if grey else ())
    files = [root / n for n in names if (root / n).is_file()]
    if not files:
        raise ValueError(f"scikit-image's sample photos are missing from {root}; reinstall scikit-image")
    return files


def _load_files(files: Sequence[pathlib.Path], grey: bool, max_pixels: int, what: str) -> List[np.ndarray]:
    images, bad = [], []
    for path in files:
        try:
            images.append(_load_image(path, grey, max_pixels))
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped, never fatal
            bad.append(f"{path.name} ({type(err).__name__}: {err})")
    if bad:
        log.warning("%s: skipped %d unreadable image(s) of %d: %s", what, len(bad), len(files), "; ".join(bad[:5]))
    if not images:
        raise ValueError(f"{what}: none of its {len(files)} image(s) could be read")
    return images


def _tfds_builder(spec: str):
    """(builder, split) of a 'name[/config]:split' spec, prepared; clear errors when it cannot be."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:  # e.g. a JAX-only GPU machine running data.pipeline="pillow"
        raise ValueError(f"tfds source {spec!r} needs tensorflow-datasets and TensorFlow, which do not import here "
                         f"({err}); use folder:<path> sources instead") from None

    try:
        name, split = spec.rsplit(":", 1)
    except ValueError:
        raise ValueError(f"tfds source {spec!r} must read tfds:<name>[/<config>]:<split>") from None
    try:
        builder = tfds.builder(name)
    except Exception as err:  # tfds raises its own DatasetNotFoundError / ConfigNotFoundError
        raise ValueError(f"unknown tfds dataset {name!r}: {err}") from None
    offline_hint = ("Without internet, point data.sources at local images, e.g. "
                    "--config.data.sources=folder:/path/to/images")
    if not builder.is_prepared():
        # tfds retries unreachable hosts for minutes: probe them first and fail fast.
        unreachable = _unreachable_host(list(builder.url_infos or ()))
        if unreachable:
            raise ValueError(f"tfds dataset {name!r} is not prepared in {builder.data_dir} and could not be "
                             f"fetched: {unreachable} is unreachable. {offline_hint}")
    return builder, split, offline_hint


def check_source(spec: str) -> None:
    """Cheap start-up check of a source string (no image is decoded, nothing downloaded)."""
    if spec == "builtin":
        builtin_files(False)
    elif spec.startswith("folder:"):
        list_images(spec[len("folder:"):])
    elif spec.startswith("tfds:"):
        _tfds_builder(spec[len("tfds:"):])
    else:
        raise ValueError(f"unknown data source {spec!r}; use builtin, folder:<path> or tfds:<name>[/<config>]:<split>")


def _tfds_images(spec: str, grey: bool, process_index: int, process_count: int) -> List[np.ndarray]:
    """Decoded images of this host's even share of a tfds split."""
    import tensorflow_datasets as tfds

    builder, split, offline_hint = _tfds_builder(spec)
    name = spec.rsplit(":", 1)[0]
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as err:  # quota, checksum, disk: one message, not a traceback
            raise ValueError(f"tfds dataset {name!r} could not be downloaded or prepared "
                             f"({type(err).__name__}: {err}). {offline_hint}") from None
    features = builder.info.features
    key = "hr" if "hr" in features else "image"
    if key not in features:
        raise ValueError(f"tfds dataset {name!r} has no 'hr' or 'image' feature (has {list(features)})")
    # Every host lists the split in the same order and keeps every process_count-th
    # record, still encoded: only its own share is decoded.
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders={key: tfds.decode.SkipDecoding()})
    ds = ds.shard(process_count, process_index)
    images = []
    for ex in tfds.as_numpy(ds):
        with Image.open(io.BytesIO(ex[key])) as img:
            images.append(to_array(img, grey))
    if not images:
        raise ValueError(f"tfds split {spec!r} gave host {process_index} of {process_count} no images")
    return images


def _unreachable_host(urls: Sequence[str], timeout: float = 5.0) -> Optional[str]:
    """The first host among `urls` that does not accept a TCP connection, or None."""
    import socket
    import urllib.parse

    for host in sorted({urllib.parse.urlsplit(u).hostname for u in urls} - {None}):
        port = 443 if any(u.startswith("https") for u in urls) else 80
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError:
            return host
    return None


def load_source(spec: str, grey: bool, process_index: int = 0, process_count: int = 1,
                max_pixels: int = DataConfig.max_pixels) -> List[np.ndarray]:
    """Decoded uint8 images of one source string, this host's disjoint share of it."""
    if spec == "builtin":
        files = builtin_files(grey)
        return _load_files(files[process_index::process_count] or files, grey, max_pixels, "builtin")
    if spec.startswith("folder:"):
        files = list_images(spec[len("folder:"):])
        if len(files) < process_count:
            raise ValueError(f"{spec}: {len(files)} image(s) cannot be shared among {process_count} hosts")
        return _load_files(files[process_index::process_count], grey, max_pixels, spec)
    if spec.startswith("tfds:"):
        return _tfds_images(spec[len("tfds:"):], grey, process_index, process_count)
    raise ValueError(f"unknown data source {spec!r}; use builtin, folder:<path> or tfds:<name>[/<config>]:<split>")


def pad_to_patch(img: np.ndarray, patch: int) -> np.ndarray:
    """Mirror-pads an image smaller than the patch (any size, even 1x1) up to it."""
    h, w = img.shape[:2]
    if h >= patch and w >= patch:
        return img
    return np.pad(img, ((0, max(patch - h, 0)), (0, max(patch - w, 0)), (0, 0)), mode="symmetric")


@dataclasses.dataclass
class ImageBank:
    """All of one host's images in one flat buffer: image k is flat[offsets[k]: ...].reshape(shapes[k])."""

    flat: np.ndarray  # [sum of H*W*C] uint8
    offsets: np.ndarray  # [N] int64
    shapes: np.ndarray  # [N, 3] int64
    probs: np.ndarray  # [N] float64, chance of drawing each image

    def __len__(self):
        return len(self.offsets)

    def image(self, k: int) -> np.ndarray:
        size = int(np.prod(self.shapes[k]))
        return self.flat[self.offsets[k]: self.offsets[k] + size].reshape(self.shapes[k])


def build_bank(config: DataConfig, process_index: int = 0, process_count: int = 1) -> ImageBank:
    """Loads this host's share of every source and weighs images by their source's weight."""
    per_source = [load_source(s, config.grey, process_index, process_count, config.max_pixels) for s in config.sources]
    images, probs = [], []
    weights = config.weights or tuple(float(len(imgs)) for imgs in per_source)
    total = sum(weights)
    for imgs, weight in zip(per_source, weights):
        for img in imgs:
            images.append(pad_to_patch(img, config.patch_size))
            probs.append(weight / total / len(imgs))
    sizes = np.array([img.size for img in images], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    log.info("image bank: %d images, %.1f MB (host %d of %d)", len(images), sizes.sum() / 1e6, process_index, process_count)
    return ImageBank(
        flat=np.concatenate([img.ravel() for img in images]),
        offsets=offsets,
        shapes=np.array([img.shape for img in images], np.int64),
        probs=np.asarray(probs, np.float64) / np.sum(probs),
    )


# ----------------------------------------------------------------------------- graph ops


def qmap_tf(luma, chroma, height: int, width: int, subsampling: Optional[str] = "4:2:0"):
    """In-graph twin of `quantization.qmap`: [8, 8] tables -> float32 [H, W, K].

    `chroma=None` gives the grey map (K = 1). Tables may be any integer or
    float dtype; `height` and `width` are Python ints.
    """
    import tensorflow as tf  # plain import: this runs inside traced tf.data functions

    def tile(table, sv, sh):
        table = tf.repeat(tf.repeat(tf.cast(table, tf.float64), sv, axis=0), sh, axis=1)
        reps = [-(-height // (8 * sv)), -(-width // (8 * sh))]
        return tf.tile(table, reps)[:height, :width]

    channels = [tile(luma, 1, 1)]
    if chroma is not None:
        channels.append(tile(chroma, *qz.SUBSAMPLING_FACTORS[subsampling]))
    return tf.cast(tf.stack(channels, axis=-1) * QMAP_SCALE, tf.float32)


def _ijg_table_bank():
    """[101, 2, 8, 8] int32: the IJG (luma, chroma) tables of every quality (row 0 unused)."""
    bank = np.ones((101, 2, 8, 8), np.int32)
    for q in range(1, 101):
        bank[q] = np.stack(qz.ijg_tables(q))
    return bank


def pillow_encode(image: np.ndarray, luma: np.ndarray, chroma: np.ndarray, subsampling: str) -> bytes:
    """JPEG bytes of a uint8 [H, W, 1 or 3] image with explicit tables, through Pillow/libjpeg."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    tables = [luma.ravel().tolist()] + ([] if image.shape[-1] == 1 else [chroma.ravel().tolist()])
    buf = io.BytesIO()
    kwargs = {} if image.shape[-1] == 1 else {"subsampling": qz.PILLOW_SUBSAMPLING[subsampling]}
    pil.save(buf, format="JPEG", qtables=tables, **kwargs)
    return buf.getvalue()


def _random_table_jpeg(image, seed, quality, use_random, subsampling: str):
    """numpy_function body: (bytes, [2, 8, 8] tables) by random tables or IJG at `quality`."""
    if use_random:
        rng = np.random.default_rng([int(s) & 0xFFFFFFFF for s in seed])
        luma, chroma = qz.random_tables(rng)
    else:
        luma, chroma = qz.ijg_tables(int(quality))
    return pillow_encode(image, luma, chroma, subsampling), np.stack([luma, chroma]).astype(np.int32)


def make_example_fn(config: DataConfig, bank: ImageBank, keep_jpeg: bool = False):
    """Returns f(index, seed [2] int64) -> example dict, a pure function of its arguments."""
    tf = _tf()
    patch, channels = config.patch_size, config.channels
    flat = tf.constant(bank.flat)
    offsets = tf.constant(bank.offsets)
    shapes = tf.constant(bank.shapes)
    with np.errstate(divide="ignore"):  # weight 0 -> log 0 = -inf: never drawn
        log_probs = tf.constant(np.log(bank.probs)[None, :], tf.float32)
    ijg_bank = tf.constant(_ijg_table_bank())
    tf_ijg = config.subsampling == "4:2:0" or config.grey  # what EncodeJpegVariableQuality writes

    def example(index, seed):
        seeds = tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(seed, index), 6)
        k = tf.random.stateless_categorical(log_probs, 1, seeds[0], dtype=tf.int32)[0, 0]
        shape = shapes[k]
        img = tf.reshape(flat[offsets[k]: offsets[k] + tf.reduce_prod(shape)], shape)
        img = tf.image.stateless_random_crop(img, [patch, patch, channels], seeds[1])
        turn = tf.random.stateless_uniform([], seeds[2], 0, 8, dtype=tf.int32)  # 4 rotations x flip
        img = tf.image.rot90(img, turn % 4)
        img = tf.cond(turn >= 4, lambda: tf.image.flip_left_right(img), lambda: img)
        img = tf.ensure_shape(img, [patch, patch, channels])

        quality = tf.random.stateless_uniform([], seeds[3], config.q_min, config.q_max + 1, dtype=tf.int32)
        use_random = tf.random.stateless_uniform([], seeds[4]) < config.p_random_table

        def via_pillow():
            data, tables = tf.numpy_function(
                lambda im, s, q, r: _random_table_jpeg(im, s, q, r, config.subsampling),
                [img, seeds[5], quality, use_random], [tf.string, tf.int32], stateful=False,
            )
            return tf.ensure_shape(data, []), tf.ensure_shape(tables, [2, 8, 8])

        def via_tf():
            data = tf.raw_ops.EncodeJpegVariableQuality(images=img, quality=quality)
            return data, ijg_bank[quality]

        if tf_ijg:
            data, tables = tf.cond(use_random, via_pillow, via_tf)
        else:
            data, tables = via_pillow()
        compressed = tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")
        compressed = tf.ensure_shape(compressed, [patch, patch, channels])
        chroma = None if config.grey else tables[1]
        out = {
            "compressed": tf.cast(compressed, tf.float32) / 255.0,
            "target": tf.cast(img, tf.float32) / 255.0,
            "qmap": qmap_tf(tables[0], chroma, patch, patch, config.subsampling),
            "quality": tf.where(use_random, 0, quality),
        }
        if keep_jpeg:
            out["jpeg"] = data
        return out

    return example


# ----------------------------------------------------------------------------- datasets


def host_info(process_index: Optional[int] = None, process_count: Optional[int] = None) -> Tuple[int, int]:
    """(index, count) of this host: explicit values, else jax's."""
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is outside 0..{process_count - 1}")
    return process_index, process_count


def _host_share(config: DataConfig, process_index: Optional[int], process_count: Optional[int],
                bank: Optional[ImageBank]) -> Tuple[int, int, ImageBank]:
    """(this host's index, its share of the global batch, its image bank)."""
    process_index, process_count = host_info(process_index, process_count)
    if config.batch_size % process_count:
        raise ValueError(f"data.batch_size {config.batch_size} is not divisible by {process_count} hosts")
    bank = bank if bank is not None else build_bank(config, process_index, process_count)
    return process_index, config.batch_size // process_count, bank


def make_train_dataset(
    config: DataConfig,
    start_step: int = 0,
    process_index: Optional[int] = None,
    process_count: Optional[int] = None,
    bank: Optional[ImageBank] = None,
    keep_jpeg: bool = False,
    threads: Optional[int] = None,
):
    """An endless tf.data stream of this host's training batches, from `start_step` on.

    Batch s of host p is a pure function of (config.seed, p, s): a restarted
    run given the step it stopped at sees exactly the batches it would have.
    `threads` bounds tf.data's private thread pool (None: all cores).
    """
    tf = _tf()
    process_index, local_batch, bank = _host_share(config, process_index, process_count, bank)
    example = make_example_fn(config, bank, keep_jpeg)
    host_seed = tf.constant([config.seed, process_index], tf.int64)

    first = int(start_step) * local_batch
    ds = tf.data.Dataset.range(first, 2**62)
    ds = ds.map(lambda i: example(i, host_seed), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(local_batch, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    if threads:
        options.threading.private_threadpool_size = int(threads)
        options.threading.max_intra_op_parallelism = 1
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def train_batches(config: DataConfig, start_step: int = 0, **kwargs) -> Iterator[Dict[str, np.ndarray]]:
    """NumPy batches from `config.pipeline`, ready for `jax.make_array_from_process_local_data`."""
    if config.pipeline == "pillow":
        return pillow_train_batches(config, start_step, **kwargs)
    return iter(make_train_dataset(config, start_step, **kwargs).as_numpy_iterator())


def pillow_example(config: DataConfig, bank: ImageBank, process_index: int, index: int,
                   keep_jpeg: bool = False) -> Dict[str, np.ndarray]:
    """Example `index` of host `process_index` without TensorFlow: NumPy + Pillow (libjpeg).

    The same recipe as `make_example_fn` (image drawn by weight, random crop,
    one of 8 rotations/flips, quality in [q_min, q_max] or a random table,
    Pillow encode, Pillow decode, tables kept for the Q-map) and a pure
    function of (seed, host, index) too, but drawn from NumPy's generator:
    the two pipelines give different, equally distributed streams. Returns
    the compact form: uint8 'compressed' and 'target' [P, P, C], int32
    'tables' [2, 8, 8], 'quality' (0: random table); `finish_batch` makes
    the float batch of it.
    """
    rng = np.random.default_rng([config.seed, process_index, index])
    patch = config.patch_size
    img = bank.image(int(rng.choice(len(bank), p=bank.probs)))
    y = int(rng.integers(img.shape[0] - patch + 1))
    x = int(rng.integers(img.shape[1] - patch + 1))
    turn = int(rng.integers(8))
    crop = np.rot90(img[y: y + patch, x: x + patch], turn % 4)
    crop = np.ascontiguousarray(crop[:, ::-1] if turn >= 4 else crop)  # [P, P, C] uint8
    quality = int(rng.integers(config.q_min, config.q_max + 1))
    use_random = rng.random() < config.p_random_table
    luma, chroma = qz.random_tables(rng) if use_random else qz.ijg_tables(quality)
    data = pillow_encode(crop, luma, chroma, config.subsampling)
    with Image.open(io.BytesIO(data)) as decoded:
        compressed = to_array(decoded, config.grey)
    out = {"compressed": compressed, "target": crop, "tables": np.stack([luma, chroma]).astype(np.int32),
           "quality": np.int32(0 if use_random else quality)}
    if keep_jpeg:
        out["jpeg"] = data
    return out


def finish_batch(config: DataConfig, compact: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Stacked `pillow_example`s -> the batch format of the tf.data stream (floats, Q-maps)."""
    p = config.patch_size
    tables = compact.pop("tables")  # [B, 2, 8, 8]
    compact["qmap"] = np.stack([qz.qmap(t[0], None if config.grey else t[1], p, p, config.subsampling) for t in tables])
    for key in ("compressed", "target"):
        compact[key] = compact[key].astype(np.float32) / 255.0
    return compact


def _pillow_batch(config: DataConfig, bank: ImageBank, process_index: int, local_batch: int, step: int,
                  keep_jpeg: bool) -> Dict[str, np.ndarray]:
    """Compact batch `step` (uint8 images: a sixth of the bytes to pass between processes)."""
    examples = [pillow_example(config, bank, process_index, step * local_batch + j, keep_jpeg)
                for j in range(local_batch)]
    return {k: np.array([e[k] for e in examples], object) if k == "jpeg" else np.stack([e[k] for e in examples])
            for k in examples[0]}


_WORKER: Dict[str, object] = {}  # the state of one pipeline worker process


def _init_worker(config: DataConfig, flat_path: str, offsets, shapes, probs, process_index, local_batch, keep_jpeg):
    import multiprocessing
    import multiprocessing.connection
    import signal
    import threading

    # Stopping is the parent's decision: a SIGTERM or Ctrl-C sent to the whole process group (SLURM,
    # `timeout`, a terminal) must let the parent save its checkpoint, not break the pool under it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:  # and a parent killed outright (SIGKILL, OOM) takes its workers with it
        threading.Thread(target=lambda: (multiprocessing.connection.wait([parent.sentinel]), os._exit(0)),
                         daemon=True).start()
    flat = np.load(flat_path, mmap_mode="r")  # shared with the parent through the page cache, not copied
    _WORKER.update(config=config, bank=ImageBank(flat, offsets, shapes, probs), process_index=process_index,
                   local_batch=local_batch, keep_jpeg=keep_jpeg)


def _worker_batch(step: int) -> Dict[str, np.ndarray]:
    w = _WORKER
    return _pillow_batch(w["config"], w["bank"], w["process_index"], w["local_batch"], step, w["keep_jpeg"])


def pillow_train_batches(
    config: DataConfig,
    start_step: int = 0,
    process_index: Optional[int] = None,
    process_count: Optional[int] = None,
    bank: Optional[ImageBank] = None,
    keep_jpeg: bool = False,
    threads: Optional[int] = None,
) -> Iterator[Dict[str, np.ndarray]]:
    """`make_train_dataset`'s stream without TensorFlow, for machines that lack it.

    `config.workers` (or `threads`) processes each build whole batches with
    `pillow_example` (Python holds the GIL for three quarters of an example,
    so threads would not scale); they map the image bank from one temporary
    .npy file instead of copying it. Batches come out in order, a few steps
    ahead. Deterministic and resumable like the tf.data stream: batch s of
    host p depends only on (seed, p, s), whatever the number of workers.
    """
    import collections
    import concurrent.futures
    import multiprocessing
    import tempfile

    process_index, local_batch, bank = _host_share(config, process_index, process_count, bank)
    workers = int(threads or config.workers or os.cpu_count() or 1)
    if workers == 1:
        step = start_step
        while True:
            yield finish_batch(config, _pillow_batch(config, bank, process_index, local_batch, step, keep_jpeg))
            step += 1

    with tempfile.TemporaryDirectory(prefix="qgac-bank-") as tmp:
        flat_path = os.path.join(tmp, "flat.npy")
        np.save(flat_path, bank.flat)
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded JAX process
            initializer=_init_worker,
            initargs=(config, flat_path, bank.offsets, bank.shapes, bank.probs, process_index, local_batch, keep_jpeg))
        try:
            ahead = collections.deque(pool.submit(_worker_batch, s) for s in range(start_step, start_step + 2 * workers))
            step = start_step + 2 * workers
            while True:
                result = ahead.popleft().result()
                ahead.append(pool.submit(_worker_batch, step))
                step += 1
                yield finish_batch(config, result)
        finally:  # the consumer stopped (or the generator was collected): drop the work queued ahead
            pool.shutdown(wait=True, cancel_futures=True)


def compress_with_pillow(image: np.ndarray, quality: int) -> Tuple[np.ndarray, qz.JpegQuantization, int]:
    """Evaluation degradation (SPEC section 6): Pillow save at `quality`, Pillow decode.

    Returns (decoded uint8 image, its quantization, JPEG size in bytes).
    """
    data = pillow_encode(image, *qz.ijg_tables(quality), "4:2:0")
    with Image.open(io.BytesIO(data)) as img:
        decoded = to_array(img, image.shape[-1] == 1)
    return decoded, qz.read_quantization(data), len(data)


def eval_examples(source: str, qualities: Sequence[int], grey: bool = False,
                  max_pixels: int = DataConfig.max_pixels) -> Iterator[Dict[str, np.ndarray]]:
    """Whole images (no crop) at fixed qualities, one image per batch.

    Yields dicts with 'compressed', 'target' [1, H, W, C] float32 in [0, 1],
    'qmap' [1, H, W, K], 'quality' [1], 'bpp' (JPEG bits per pixel) and 'name'.
    """
    for q in qualities:
        qz._validate_quality(q)
    if source.startswith("folder:"):
        source = source[len("folder:"):]
    files = builtin_files(grey) if source == "builtin" else list_images(source)
    for path in files:
        try:
            clean = _load_image(path, grey, max_pixels)
        except Exception as err:  # noqa: BLE001
            log.warning("evaluation: skipped %s (%s: %s)", path, type(err).__name__, err)
            continue
        for q in qualities:
            compressed, tables, nbytes = compress_with_pillow(clean, q)
            yield {
                "compressed": compressed[None].astype(np.float32) / 255.0,
                "target": clean[None].astype(np.float32) / 255.0,
                "qmap": tables.qmap(*clean.shape[:2])[None],
                "quality": np.array([q], np.int32),
                "bpp": 8.0 * nbytes / (clean.shape[0] * clean.shape[1]),
                "name": path.name,
            }
