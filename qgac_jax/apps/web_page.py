"""The restoring web page: upload photos, choose what the network is told, compare before / after, download.

The page is a face on `restore`'s engine (`restore_jobs`): the same model per
colour, backend, tiling, quality estimate, size limit and PNG writing (with
the input's colour profile and EXIF), so a download equals what
`python -m qgac_jax.restore` writes with the same settings. Each failure is
one line in the page. Requests queue one at a time (the network already
takes every core); each request works in a temporary folder of its own,
deleted seconds after the response (once Gradio has its copy), and Gradio's
copies of uploads and downloads are deleted within minutes (`DELETE_AFTER_S`). Nothing is fetched
from the internet: the theme's fonts are Gradio's bundled ones, analytics are
off, and the page is served on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
import threading
import traceback
from typing import List, Optional, Sequence, Tuple

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import dataclasses  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from qgac_jax.commands import engines, jobs
from qgac_jax.restoring import guide
from qgac_jax.files import inputs, outputs
from qgac_jax.models import shipped  # noqa: E402
from qgac_jax.commands.jobs import Settings  # noqa: E402

# The guide's modes (`guide`) as the page offers them: auto, file, and the slider's quality.
MODES = ("auto: the file's own and the estimate", "the file's own", "the quality below")
DELETE_AFTER_S = 120  # Gradio's copies of uploads and results: checked every minute, deleted at this age
KEEP_OURS_S = 10.0  # a request's own folder outlives the response by this much (Gradio copies it at once)
PREVIEW_SIDE = 4096  # the before / after comparison shows photos up to this side at 1:1 (larger ones halved, ...)
MAX_QUEUE = 16  # requests waiting at once; more are turned away (the network takes every core for one)
# The shipped models as the page offers them (shipped.MODELS), the faithful one first.
MODEL_CHOICES = {"psnr": "faithful (highest PSNR)", "perceptual": "perceptual (crisper textures)"}


def upload_limit(max_pixels: int) -> int:
    """Bytes one upload may have: an uncompressed 8-bit RGB photo of --max-pixels and 1 MB of metadata. Gradio
    refuses larger ones before reading them, so an upload cannot fill memory or disk past what restoring takes."""
    return 3 * int(max_pixels) + 2**20


def _mode(choice: str, quality: float) -> guide.Mode:
    return guide.parse_mode({MODES[1]: "file", MODES[2]: int(quality)}.get(choice, "auto"))


def _preview(pixels: np.ndarray) -> np.ndarray:
    """8-bit RGB(A) for the comparison slider, downscaled by an integer step when very large."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    step = max(1, -(-max(pixels.shape[:2]) // PREVIEW_SIDE))
    return np.ascontiguousarray(pixels[::step, ::step])


class Page:
    """The restore function behind the page, with the models loaded once for all requests."""

    def __init__(self, settings: Settings, workdir: Optional[str] = None):
        self.settings = settings
        engine = engines.decide(settings)
        # One set of models per shipped model offered (a --checkpoint or --onnx is the only one).
        offered = ["psnr"] if settings.checkpoint or settings.onnx else \
            [m for m in shipped.MODELS if shipped.default_checkpoint(3, m) is not None]
        self.choices = [MODEL_CHOICES[m] for m in offered]
        self.models = {MODEL_CHOICES[m]: engines.Models(dataclasses.replace(settings, model=m), engine)
                       for m in offered}
        self.workdir = workdir  # parent of each request's temporary folder (None: the system's)

    def restore(self, files: Optional[Sequence[str]], told: str = MODES[0], quality: float = 50,
                model: str = MODEL_CHOICES["psnr"], progress=gr.Progress()
                ) -> Tuple[List[str], Optional[tuple], str]:
        """(PNG paths to download, (before, after) of the first restored photo, a line per file)."""
        if model not in self.models:  # the API can be called without the page
            return [], None, f"error: no model {model!r} here; choose one of: {', '.join(self.choices)}"
        models = self.models[model]
        files = [files] if isinstance(files, str) else list(files or [])
        if not files:  # (an answer, not an exception: nothing for the server's log)
            return [], None, "Choose one or more photos first."
        out_dir = tempfile.mkdtemp(prefix="qgac-page-", dir=self.workdir)
        pngs, lines, comparison = [], [], None
        names = [pathlib.Path(path).name for path in files]
        for number, (path, name, png_name) in enumerate(zip(files, names, inputs.output_names(names))):
            total = [1]

            def started(decoded, restorer, total=total):
                total[0] = max(1, restorer.tile_count(*decoded.pixels.shape[:2]))

            def step(n, done=[0], total=total, number=number, name=name):  # noqa: B006 - a counter per file
                done[0] += n
                progress((number + done[0] / total[0]) / len(files), desc=f"restoring {name}")

            try:  # each file succeeds or fails alone: decoding, restoring, writing and the preview
                result = jobs.restore_file(models, path, models.settings, _mode(told, quality),
                                           progress=step, on_decoded=started)
                dest = pathlib.Path(out_dir) / png_name
                outputs.write_png_atomically(result.pixels, dest, result.decoded.metadata)
                if comparison is None:
                    comparison = (_preview(_upright_input(result.decoded)), _preview(result.pixels))
            except Exception as err:  # noqa: BLE001 - one line per file, as restore prints them; the page goes on
                lines.append(f"error: {name}: {jobs.reason(err)}")
                continue
            pngs.append(str(dest))
            lines += [f"warning: {name}: {note}" for note in result.notes]
            renamed = png_name != pathlib.Path(name).stem + ".png"  # its stem is another upload's too
            lines.append(f"{name}: {result.guide.sentence}" + (f" (saved as {png_name})" if renamed else ""))
        # Gradio copies the results into its own cache once this returns (milliseconds); ours go soon after.
        threading.Timer(0.0 if not pngs else KEEP_OURS_S, shutil.rmtree, (out_dir,), {"ignore_errors": True}).start()
        return pngs, comparison, "\n\n".join(lines)


def _upright_input(decoded) -> np.ndarray:
    """The decoded input as the output is written (8 or 16 bits, upright, alpha kept): the 'before' side."""
    from qgac_jax.files.images import to_output

    return to_output(decoded.pixels, decoded)


def build(page: Page) -> gr.Blocks:
    """The page's layout and events; `demo.launch` serves it."""
    with gr.Blocks(title="qgac_jax: restore compressed photos", analytics_enabled=False,
                   delete_cache=(60, DELETE_AFTER_S)) as demo:
        gr.Markdown("# Restore compressed photos\nUpload JPEG, WebP, AVIF or HEIC photos (others with a quality), "
                    f"up to {upload_limit(page.settings.max_pixels) / 2**20:,.0f} MB and "
                    f"{page.settings.max_pixels / 1e6:,.0f} megapixels each. "
                    "The result is a lossless PNG with the photo's colour profile and EXIF.")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Photos", file_count="multiple", type="filepath", elem_id="photos")
                told = gr.Radio(list(MODES), value=MODES[0], label="What the network is told", elem_id="guide")
                quality = gr.Slider(1, 100, value=50, step=1, label="Quality (lower asks for a stronger correction)",
                                    elem_id="quality")
                model = gr.Radio(page.choices, value=page.choices[0], label="Model", elem_id="model",
                                 visible=len(page.choices) > 1)
                button = gr.Button("Restore", variant="primary", elem_id="restore")
            with gr.Column():
                slider = gr.ImageSlider(label="Before / after", elem_id="comparison", type="numpy")
                downloads = gr.File(label="Restored PNGs", file_count="multiple", elem_id="downloads")
                report = gr.Markdown(elem_id="report")
        button.click(page.restore, [files, told, quality, model], [downloads, slider, report], api_name="restore",
                     concurrency_limit=1)
    return demo


# Local fonts only (the default theme's are bundled too; these need nothing at all).
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


class _OneLineRefusals:
    """Stands in for `traceback` in Gradio's queue, which prints one for every request it refuses before our
    function runs (a choice the page does not offer, a quality out of range, files that are not a list): in the
    server's log those are a caller's mistakes, each one line."""

    def __getattr__(self, name):
        return getattr(traceback, name)

    @staticmethod
    def print_exc(*args, **kwargs) -> None:
        err = sys.exc_info()[1]
        print(f"refused a request: {' '.join(str(err).split())[:300] or type(err).__name__}", file=sys.stderr)


def serve(settings: Settings, host: str = "127.0.0.1", port: Optional[int] = None, share: bool = False,
          block: bool = True):
    """Builds and launches the page; returns (demo, local URL)."""
    from gradio import queueing

    queueing.traceback = _OneLineRefusals()
    demo = build(Page(settings))
    demo.queue(default_concurrency_limit=1, max_size=MAX_QUEUE)
    _, url, _ = demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                            quiet=True, ssr_mode=False, show_error=False, theme=THEME,
                            max_file_size=upload_limit(settings.max_pixels))
    return demo, url
