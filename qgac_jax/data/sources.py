"""Where clean photos come from, and the in-memory image bank they are decoded into once.

Sources are config strings:
  builtin                            scikit-image's sample photos (no download)
  folder:<path>                      PNG, BMP, TIFF, JPEG, WebP, recursively
  tfds:<name>[/<config>]:<split>     e.g. tfds:div2k/bicubic_x2:train (key 'hr')

Each host decodes its share of the images once at start-up into one flat
uint8 buffer (plus offsets and shapes). Examples are then index-addressable:
example i of host p is a pure function of (seed, p, i), so the stream is
deterministic and resumable at any step with no iterator state to save, and
PNG decoding stays out of the hot loop. Cost: host RAM equal to that host's
decoded images (DIV2K train HR: about 6.9 GB over all hosts).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import pathlib
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from qgac_jax.data.options import DataConfig
from qgac_jax.files.images import IMAGE_SUFFIXES  # the files restore reads are the files training reads

log = logging.getLogger(__name__)

# Photographs shipped inside scikit-image's wheel (skimage/data), usable offline.
BUILTIN_COLOUR = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png",
                  "rocket.jpg")
BUILTIN_GREY = ("camera.png", "moon.png", "coins.png", "brick.png", "grass.png", "gravel.png")
SOURCE_FORMS = "builtin, folder:<path> or tfds:<name>[/<config>]:<split>"


def parse_source(spec: str) -> Tuple[str, str]:
    """('builtin' | 'folder' | 'tfds', argument) of a source string; a bare path counts as a folder."""
    if spec == "builtin":
        return "builtin", ""
    for kind in ("folder", "tfds"):
        if spec.startswith(kind + ":"):
            return kind, spec[len(kind) + 1:]
    if ":" not in spec:  # a plain path: a folder (list_images says when it is missing)
        return "folder", spec
    raise ValueError(f"unknown data source {spec!r}; use {SOURCE_FORMS}")


def to_array(img: Image.Image, grey: bool) -> np.ndarray:
    """A decoded PIL image as uint8 [H, W, 1 or 3] (grey: ITU-R BT.601 luma)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = Image.fromarray((np.asarray(img, np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    if grey:
        arr = np.asarray(img.convert("L"))[..., None]
    else:
        arr = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(arr, dtype=np.uint8)


def load_image(path: pathlib.Path, grey: bool, max_pixels: int) -> np.ndarray:
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


def source_files(spec: str, grey: bool) -> List[pathlib.Path]:
    """The image files of a builtin or folder source (tfds sources have none)."""
    kind, arg = parse_source(spec)
    if kind == "tfds":
        raise ValueError(f"{spec}: a tfds source is not a list of files; use folder:<path> or builtin here")
    return builtin_files(grey) if kind == "builtin" else list_images(arg)


def _load_files(files: Sequence[pathlib.Path], grey: bool, max_pixels: int, what: str) -> List[np.ndarray]:
    images, bad = [], []
    for path in files:
        try:
            images.append(load_image(path, grey, max_pixels))
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped, never fatal
            bad.append(f"{path.name} ({type(err).__name__}: {err})")
    if bad:
        log.warning("%s: skipped %d unreadable image(s) of %d: %s", what, len(bad), len(files), "; ".join(bad[:5]))
    if not images:
        raise ValueError(f"{what}: none of its {len(files)} image(s) could be read")
    return images


def _tfds_builder(spec: str):
    """(builder, split, hint) of a 'name[/config]:split' spec; clear errors when it cannot be prepared."""
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
    kind, arg = parse_source(spec)
    if kind == "tfds":
        _tfds_builder(arg)
    else:
        source_files(spec, False)


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
    kind, arg = parse_source(spec)
    if kind == "tfds":
        return _tfds_images(arg, grey, process_index, process_count)
    files = source_files(spec, grey)
    if kind == "builtin":  # a handful of photos: every host takes all of them if they do not go round
        return _load_files(files[process_index::process_count] or files, grey, max_pixels, "builtin")
    if len(files) < process_count:
        raise ValueError(f"{spec}: {len(files)} image(s) cannot be shared among {process_count} hosts")
    return _load_files(files[process_index::process_count], grey, max_pixels, spec)


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
            images.append(pad_to_patch(img, config.crop_size))
            probs.append(weight / total / len(imgs))
    sizes = np.array([img.size for img in images], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    log.info("image bank: %d images, %.1f MB (host %d of %d)", len(images), sizes.sum() / 1e6, process_index,
             process_count)
    return ImageBank(
        flat=np.concatenate([img.ravel() for img in images]),
        offsets=offsets,
        shapes=np.array([img.shape for img in images], np.int64),
        probs=np.asarray(probs, np.float64) / np.sum(probs),
    )


def host_info(process_index: Optional[int] = None, process_count: Optional[int] = None) -> Tuple[int, int]:
    """(index, count) of this host: explicit values, else jax's."""
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is outside 0..{process_count - 1}")
    return process_index, process_count


def host_share(config: DataConfig, process_index: Optional[int], process_count: Optional[int],
               bank: Optional[ImageBank]) -> Tuple[int, int, ImageBank]:
    """(this host's index, its share of the global batch, its image bank)."""
    process_index, process_count = host_info(process_index, process_count)
    if config.batch_size % process_count:
        raise ValueError(f"data.batch_size {config.batch_size} is not divisible by {process_count} hosts")
    bank = bank if bank is not None else build_bank(config, process_index, process_count)
    return process_index, config.batch_size // process_count, bank
