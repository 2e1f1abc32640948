"""What a photo carries besides pixels, kept on the restored PNG: colour profile, EXIF, XMP.

A colour-managed viewer shows a PNG without the input's ICC profile as sRGB,
which moves a wide-gamut photo's colours more than restoring it does; EXIF
holds the camera, the date and the place. `read` takes them off the opened
input; `png_options` hands them to Pillow's PNG writer (iCCP, eXIf and an
iTXt XMP chunk). The pixels are written upright, so the EXIF orientation
(and XMP's tiff:Orientation) is set to 1 when it has been applied.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any, Dict, Optional

from PIL import Image, PngImagePlugin

ORIENTATION = 0x0112
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation\s*=\s*"|<tiff:Orientation>)\s*\d\s*')


@dataclasses.dataclass(frozen=True)
class Metadata:
    icc_profile: Optional[bytes] = None
    exif: Optional[Image.Exif] = None  # orientation already reset to 1 where the pixels were turned upright
    xmp: Optional[bytes] = None


def read(img: Image.Image, orientation_applied: bool) -> Metadata:
    """The ICC profile, EXIF and XMP of an opened image (any format Pillow reads).

    EXIF that cannot be written back (an orientation of -3 as a signed short, a value out of its type's range)
    is dropped with a warning: odd metadata never costs a photo its restoration.
    """
    exif = img.getexif()
    if orientation_applied and exif.get(ORIENTATION, 1) != 1:
        exif[ORIENTATION] = 1
    if exif.get(ORIENTATION, 1) not in range(1, 9):  # (images warned and restored it as stored)
        del exif[ORIENTATION]
    try:
        exif.tobytes()
    except Exception as err:  # noqa: BLE001 - Pillow's writer on whatever a file's EXIF holds
        warnings.warn(f"its EXIF cannot be written back ({type(err).__name__}: {err}): left off the output")
        exif = Image.Exif()
    xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if xmp and orientation_applied:
        xmp = _XMP_ORIENTATION.sub(lambda m: m.group(1) + b"1", xmp)
    return Metadata(img.info.get("icc_profile") or None, exif if len(exif) else None, xmp or None)


def png_options(meta: Optional[Metadata]) -> Dict[str, Any]:
    """Keyword arguments of `Image.save(..., format="PNG")` that write `meta`."""
    if meta is None:
        return {}
    options: Dict[str, Any] = {}
    if meta.icc_profile:
        options["icc_profile"] = meta.icc_profile
    if meta.exif is not None:
        options["exif"] = meta.exif
    if meta.xmp:
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace"))
        options["pnginfo"] = info
    return options
