"""A restore's outputs: lossless PNGs written whole or not at all, into a folder proven writable first."""

from __future__ import annotations

import io
import pathlib
import tempfile
from typing import Optional

from PIL import Image

from qgac_jax.files import atomic_files, metadata, png16
from qgac_jax.files.metadata import Metadata

PNG_LEVEL = 3  # zlib level of the PNGs: docs/performance.md weighs time against size (Pillow defaults to 6)


def png_bytes(pixels, meta: Optional[Metadata] = None) -> bytes:
    """The PNG `restore` writes of restored pixels (uint8 or uint16, grey, RGB or RGBA) and their metadata."""
    if pixels.dtype == "uint16" and pixels.ndim == 3:
        return png16.encode(pixels, meta)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=PNG_LEVEL, **metadata.png_options(meta))
    return buf.getvalue()


def write_png_atomically(pixels, path: pathlib.Path, meta: Optional[Metadata] = None) -> None:
    """PNG (with `meta`), replacing `path` whole or not at all (`atomic_files`): no partial outputs, ever."""
    atomic_files.write_bytes(path, png_bytes(pixels, meta))


def check_output_folder(folder: pathlib.Path) -> None:
    """Creates `folder` if needed and proves it writable; a ValueError naming it otherwise."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"--output {folder} is not a writable folder ({err.strerror or err})") from None
