"""Writes notebooks/qgac_colab.ipynb from the cells below (edit here, then run this file).

    python notebooks/build_colab.py
"""

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """# QGAC in JAX: quantization-guided JPEG artifact correction

This notebook restores a JPEG with the checkpoint that ships with `qgac_jax`,
shows what the network is told (the Q-map) and where it looks (the QGA
attention maps), then trains a tiny model for a few steps and restores with
the checkpoint it wrote. It runs on a CPU in a few minutes; on Colab choose
any runtime."""),
    ("code", """# Install: on Colab, clone the GitHub repository this notebook was opened from (the configs live beside
# the package) and install it without TensorFlow extras: Colab's own tensorflow stays the only one. In a
# checkout where qgac_jax is already installed, that is used. Running this cell again reuses the clone.
import importlib.util, json, os, pathlib, re, shutil, subprocess, sys, urllib.parse, urllib.request


def opened_from():
    \"\"\"(git URL, branch or commit) of the GitHub notebook this Colab session opened, else None.\"\"\"
    host = os.environ.get("COLAB_JUPYTER_IP")  # Colab's Jupyter server, which knows where the notebook came from
    if not host:
        return None
    try:
        url = f"http://{host}:{os.environ.get('KMP_TARGET_PORT', '9000')}/api/sessions"
        with urllib.request.urlopen(url, timeout=5) as response:
            paths = [urllib.parse.unquote(str(s.get("path", ""))) for s in json.load(response)]
    except (OSError, ValueError, AttributeError):
        return None
    for path in paths:  # fileId=https://github.com/OWNER/REPO/blob/REF/notebooks/qgac_colab.ipynb
        found = re.search(r"github\\.com/([^/]+/[^/]+)/blob/(.+)/notebooks/qgac_colab\\.ipynb", path)
        if found:
            return f"https://github.com/{found[1]}.git", found[2]
    return None


def clone(repo, ref, dest):
    \"\"\"A clone of `repo` at `ref` (branch, tag or commit; None: the default branch) at `dest`, or nothing.\"\"\"
    partial = dest.with_name(dest.name + ".partial")  # an interrupted clone never looks like a finished one
    shutil.rmtree(partial, ignore_errors=True)
    if ref and re.fullmatch(r"[0-9a-f]{7,40}", ref):  # a link to a commit: full history, then check it out
        subprocess.check_call(["git", "clone", "-q", repo, str(partial)])
        subprocess.check_call(["git", "-C", str(partial), "checkout", "-q", ref])
    else:
        branch = ["--branch", ref] if ref else []
        subprocess.check_call(["git", "clone", "-q", "--depth", "1", *branch, repo, str(partial)])
    partial.rename(dest)


SRC = pathlib.Path("qgac_jax_src")
if importlib.util.find_spec("qgac_jax") is None:
    if not SRC.is_dir():
        source = (os.environ["QGAC_REPO"], None) if os.environ.get("QGAC_REPO") else opened_from()
        if source is None:
            raise SystemExit("qgac_jax is not installed and this notebook was not opened from GitHub: open it "
                             "from the repository on GitHub, or set os.environ['QGAC_REPO'] to a git URL of it")
        clone(*source, SRC)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", f"{SRC}[train]"])
    sys.path.insert(0, str(SRC))
ROOT = next(p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents, SRC]
            if (p / "configs" / "smoke.py").exists())
sys.path.insert(0, str(ROOT))
print("configs from", ROOT)"""),
    ("md", "## Compress a photo at quality 10 and restore it with the shipped checkpoint"),
    ("code", """import io
import numpy as np
import matplotlib.pyplot as plt
import skimage.data
from PIL import Image

from qgac_jax import Restorer, codecs
from qgac_jax.evaluation import metrics
from qgac_jax.models.shipped import default_checkpoint

clean = skimage.data.chelsea()                      # a photo shipped inside scikit-image
buf = io.BytesIO()
Image.fromarray(clean).save(buf, format="JPEG", quality=10)
jpeg_bytes = buf.getvalue()
jpeg = np.asarray(Image.open(io.BytesIO(jpeg_bytes)))

checkpoint = default_checkpoint()
print("shipped checkpoint:", checkpoint)
restorer = Restorer.from_checkpoint(checkpoint)
restored = restorer.restore(jpeg_bytes)               # tables are read from the JPEG itself

def scores(img):
    return {k: float(v[0]) for k, v in metrics.all_metrics(clean, img).items()}

jpeg_scores, model_scores = scores(jpeg), scores(restored)
for name in ("psnr", "ssim", "psnr_b"):
    print(f"{name:7s} JPEG {jpeg_scores[name]:8.3f}   restored {model_scores[name]:8.3f}   "
          f"gain {model_scores[name] - jpeg_scores[name]:+.3f}")
PSNR_GAIN = model_scores["psnr"] - jpeg_scores["psnr"]"""),
    ("code", """# Side by side, with a zoomed crop underneath.
y0, x0, size = 60, 120, 96
fig, axes = plt.subplots(2, 3, figsize=(13, 8))
for col, (title, img) in enumerate([("JPEG q10", jpeg), ("restored", restored), ("original", clean)]):
    axes[0, col].imshow(img); axes[0, col].set_title(title)
    axes[1, col].imshow(img[y0:y0 + size, x0:x0 + size], interpolation="nearest")
    axes[1, col].set_title(title + " (zoom)")
for ax in axes.flat:
    ax.axis("off")
plt.tight_layout(); plt.show()"""),
    ("md", """## What the network is told, and where it looks

The Q-map tiles the file's quantization tables over the image (luma per 8x8,
chroma per 16x16 at 4:2:0). Each QGA block turns features plus the pooled
Q-map into a one-channel attention map in [0, 1]."""),
    ("code", """tables = codecs.read_quantization(jpeg_bytes)
h, w = 64, 64
qmap = tables.qmap(h, w)                                # [H, W, 2], steps / 255
pixels = jpeg[:h, :w].astype(np.float32)[None] / 255.0
_, state = restorer.model.apply({"params": restorer.params}, pixels, qmap[None], mutable=["intermediates"])
attention = {k: np.asarray(v["attention"][0][0, ..., 0]) for k, v in state["intermediates"].items()}

fig, axes = plt.subplots(1, 2 + len(attention), figsize=(4 * (2 + len(attention)), 4))
axes[0].imshow(qmap[..., 0] * 255, cmap="magma"); axes[0].set_title("Q-map, luma steps")
axes[1].imshow(qmap[..., 1] * 255, cmap="magma"); axes[1].set_title("Q-map, chroma steps")
for ax, (name, att) in zip(axes[2:], sorted(attention.items())):
    ax.imshow(att, vmin=0, vmax=1, cmap="viridis"); ax.set_title(f"{name} attention {att.shape}")
for ax in axes:
    ax.axis("off")
plt.tight_layout(); plt.show()
assert all(0.0 <= a.min() and a.max() <= 1.0 for a in attention.values())"""),
    ("md", """## Train a tiny model for a few steps

The smoke config trains on the built-in photos for a few steps (about 20 s on
a CPU), writing Orbax checkpoints and a params-only export to the workdir.
The full recipes are `configs/cpu.py`, `configs/psnr.py` and `configs/base.py`."""),
    ("code", """import tempfile
from configs import smoke

from qgac_jax.training import restoration

workdir = tempfile.mkdtemp(prefix="qgac_smoke_")
config = smoke.get_config()
_, summary = restoration.train_and_evaluate(config, workdir)   # the final state and the last metrics
print({k: round(v, 4) for k, v in summary.items() if k in ("loss", "psnr", "jpeg_psnr", "model_psnr")})

mine = Restorer.from_checkpoint(workdir)                # restores the export this run wrote
print("restored with my checkpoint:", mine.restore(jpeg_bytes).shape)"""),
]


def build() -> nbformat.NotebookNode:
    cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["colab"] = {"provenance": []}
    return nb


if __name__ == "__main__":
    out = pathlib.Path(__file__).with_name("qgac_colab.ipynb")
    nbformat.write(build(), out)
    print(f"wrote {out}")
