"""The restoring web page: upload photos and short clips, choose how strongly to correct and how much texture to
restore (the realism slider), compare each before / after, download.

The page is a face on `restore`'s engine (`restore_jobs`): the same model per
colour, backend, tiling, quality estimate, size limit and PNG writing (with
the input's colour profile and EXIF), so a download equals what
`qgac-restore` writes with the same settings. Clips (where PyAV is installed)
up to `CLIP_SECONDS` long are restored as `restore` restores them
(`restoring.video`); their before / after is the first frame. Each failure is
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
import time
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import dataclasses  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from qgac_jax.commands import engines, jobs  # noqa: E402
from qgac_jax.commands.jobs import Settings  # noqa: E402
from qgac_jax.files import clips, inputs, outputs  # noqa: E402
from qgac_jax.models import realism as realism_lib, shipped  # noqa: E402
from qgac_jax.restoring import guide  # noqa: E402

# What the network is told (`guide`'s modes auto, file and a quality), in words for the page.
MODES = ("automatic (recommended): from how the file was saved, and whether it was saved before",
         "only how the file says it was saved",
         "as a JPEG of the quality I choose below")
# guide's sentences name restore's flag; on the page the choice above is the way to it
FOR_THE_PAGE = (("--quality Q restores it as a JPEG of quality Q",
                 f"choose \"{MODES[2]}\" to restore it as a JPEG of that quality"),
                (" (--quality)", " (chosen on the page)"))
DELETE_AFTER_S = 120  # Gradio's copies of uploads and results: checked every minute, deleted at this age
KEEP_OURS_S = 10.0  # a request's own folder outlives the response by this much (Gradio copies it at once)
PREVIEW_SIDE = 4096  # the before / after comparison shows photos up to this side at 1:1 (larger ones halved, ...)
CLIP_SECONDS = 10.0  # the longest clip the page restores (a 480p second takes about half a minute on 2 cores)
MAX_QUEUE = 16  # requests waiting at once; more are turned away (the network takes every core for one)
REALISM_STEP = 0.1  # the slider's step: at most 11 blends (each made and converted once, `models.realism`)
KEEP_BLENDS = 3  # the realism settings whose models stay loaded at once (each holds its own sessions)


def upload_limit(max_pixels: int) -> int:
    """Bytes one upload may have: an uncompressed 8-bit RGB photo of --max-pixels and 1 MB of metadata. Gradio
    refuses larger ones before reading them, so an upload cannot fill memory or disk past what restoring takes."""
    return 3 * int(max_pixels) + 2**20


def megabytes(size: int) -> str:
    """A size as the page and docs/web_page.md write it: decimal megabytes."""
    return f"{size / 1e6:,.0f} MB"


def _words(line: str) -> str:
    for flag, words in FOR_THE_PAGE:
        line = line.replace(flag, words)
    return line


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
        self.settings, self.engine = settings, engines.decide(settings)
        # the realism slider where both shipped models are here (a --checkpoint or --onnx is the only model)
        self.blends = not (settings.checkpoint or settings.onnx) and \
            shipped.default_checkpoint(3, "perceptual") is not None
        self._models: Dict[float, engines.Models] = {}  # realism -> its models, the most recent last
        self.workdir = workdir  # parent of each request's temporary folder (None: the system's)

    def models(self, r: float) -> engines.Models:
        """The models of realism `r` (`restore --realism R`: 0 is the PSNR model as restore runs it by default),
        loaded on first use; the least recently used set is let go beyond KEEP_BLENDS."""
        if r not in self._models:
            if len(self._models) >= KEEP_BLENDS:
                self._models.pop(next(iter(self._models)))
            self._models[r] = engines.Models(dataclasses.replace(self.settings, realism=r), self.engine)
        self._models[r] = self._models.pop(r)  # (most recent last)
        return self._models[r]

    def restore(self, files: Optional[Sequence[str]], told: str = MODES[0], quality: float = 50,
                realism: float = 0.0, progress=gr.Progress()
                ) -> Tuple[List[str], Optional[gr.ImageSlider], str, Dict[str, tuple]]:
        """(PNG paths to download, the first restored photo's before / after, a line per file, {upload name:
        (before, after)} of every restored photo: the page's 'Compare' choice; not part of the API)."""
        try:  # the API can be called without the page
            r = realism_lib.parse(realism)
        except ValueError as err:
            return [], None, f"error: {err}", {}
        if r and not self.blends:
            return [], None, ("error: this page restores with one model (no perceptual model to blend with): "
                              "leave the realism at 0"), {}
        models = self.models(r)
        files = [files] if isinstance(files, str) else list(files or [])
        if not files:  # (an answer, not an exception: nothing for the server's log)
            return [], None, "Choose one or more photos first.", {}
        start, out_dir = time.perf_counter(), tempfile.mkdtemp(prefix="qgac-page-", dir=self.workdir)
        pngs, lines, comparisons = [], [], {}
        names = [pathlib.Path(path).name for path in files]
        for number, (path, name, png_name) in enumerate(zip(files, names, inputs.output_names(names))):
            if pathlib.Path(name).suffix.lower() in clips.VIDEO_SUFFIXES:
                def clip_step(done, total, number=number, name=name):
                    progress((number + done / max(total, done + 1)) / len(files), desc=f"restoring {name}")

                try:
                    dest = pathlib.Path(out_dir) / png_name
                    line, pair = _restore_clip(models, path, dest, _mode(told, quality), clip_step)
                    comparisons[f"{name} (first frame)"] = pair
                except Exception as err:  # noqa: BLE001 - one line per file, as for a photo
                    lines.append(f"error: {name}: {_words(jobs.reason(err))}")
                    continue
                pngs.append(str(dest))
                lines.append(f"{name}: {line}")
                continue
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
                comparisons[name] = (_preview(_upright_input(result.decoded)), _preview(result.pixels))
            except Exception as err:  # noqa: BLE001 - one line per file, as restore prints them; the page goes on
                lines.append(f"error: {name}: {_words(jobs.reason(err))}")
                continue
            pngs.append(str(dest))
            lines += [f"warning: {name}: {note}" for note in result.notes]
            renamed = png_name != pathlib.Path(name).stem + ".png"  # its stem is another upload's too
            lines.append(f"{name}: {_words(result.guide.sentence)}" + (f" (saved as {png_name})" if renamed else ""))
        # Gradio copies the results into its own cache once this returns (milliseconds); ours go soon after.
        threading.Timer(0.0 if not pngs else KEEP_OURS_S, shutil.rmtree, (out_dir,), {"ignore_errors": True}).start()
        print(f"request: {len(files)} file(s), realism {r:g}, {_mode(told, quality)}: restored {len(pngs)}, "
              f"failed {len(files) - len(pngs)}, {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        first = next(iter(comparisons), None)
        return pngs, (_comparison(first, comparisons[first]) if first else None), "\n\n".join(lines), comparisons


def _restore_clip(models, path: str, dest: pathlib.Path, mode: guide.Mode, progress) -> Tuple[str, tuple]:
    """One uploaded clip restored as `restore` restores it; (its line, the first frame before and after)."""
    from qgac_jax.restoring import video

    info = clips.probe(path)
    if info.seconds is None or info.seconds > CLIP_SECONDS:
        length = "of unknown length" if info.seconds is None else f"{info.seconds:.1f} s long"
        raise ValueError(f"the clip is {length}; the page restores clips up to {CLIP_SECONDS:g} s "
                         "(restore longer ones with qgac-restore)")
    if info.width * info.height > models.settings.max_pixels:
        raise ValueError(f"its frames are {info.width}x{info.height}, above the page's limit of "
                         f"{models.settings.max_pixels / 1e6:,.0f} megapixels")
    restorer = models(info.pix_fmt == "gray", clip=True)
    report = video.restore_clip(restorer, path, dest, mode, progress=progress, info=info)
    before = next(clips.frames(path, info)).pixels
    after = next(clips.frames(dest, clips.probe(dest))).pixels
    lost = f"; {report.lost_line(shown=0)}" if report.lost else ""
    told = (f"every frame told IJG tables of quality {mode}" if isinstance(mode, int) else
            "each frame told its own quantizers")
    return (f"restored {report.frames} frames ({info.describe()}), {told}{lost} ({report.seconds:.1f} s)",
            (_preview(before), _preview(after)))


def _comparison(name: str, pair: tuple) -> gr.ImageSlider:
    """The before / after slider showing one photo, labelled with its name."""
    return gr.ImageSlider(value=pair, label=f"{name}: before (left), restored (right)")


def _compare_choices(comparisons: Dict[str, tuple]) -> gr.Dropdown:
    names = list(comparisons)
    return gr.Dropdown(choices=names, value=names[0] if names else None, visible=len(names) > 1)


def _compare(comparisons: Dict[str, tuple], name: Optional[str]):
    return _comparison(name, comparisons[name]) if name in comparisons else gr.ImageSlider()


def _upright_input(decoded) -> np.ndarray:
    """The decoded input as the output is written (8 or 16 bits, upright, alpha kept): the 'before' side."""
    from qgac_jax.files.images import to_output

    return to_output(decoded.pixels, decoded)


def build(page: Page) -> gr.Blocks:
    """The page's layout and events; `demo.launch` serves it."""
    with gr.Blocks(title="qgac_jax: restore compressed photos", analytics_enabled=False,
                   delete_cache=(60, DELETE_AFTER_S)) as demo:
        clip_words = (f", or H.264, HEVC, VP9 or AV1 clips up to {CLIP_SECONDS:g} seconds (MP4, MOV, MKV, WebM)"
                      if clips.available() else "")
        gr.Markdown(f"# Restore compressed photos\nUpload JPEG, WebP, AVIF or HEIC photos{clip_words}, up to "
                    f"{megabytes(upload_limit(page.settings.max_pixels))} and "
                    f"{page.settings.max_pixels / 1e6:,.0f} megapixels each (a PNG or other lossless photo "
                    "records no compression: restore it as a JPEG of a quality you choose). "
                    "Each photo comes back as a lossless PNG with its colour profile and EXIF"
                    + (", each clip as a clip with its sound" if clip_words else "") + ".")
        comparisons = gr.State({})  # upload name -> (before, after) of the last request's restored photos
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Photos and clips" if clips.available() else "Photos", file_count="multiple",
                                type="filepath", elem_id="photos")
                told = gr.Radio(list(MODES), value=MODES[0], label="How strongly to correct", elem_id="guide")
                quality = gr.Slider(1, 100, value=50, step=1, interactive=False, elem_id="quality",
                                    label="JPEG quality to correct as (lower: stronger); used by the last choice "
                                          "above only")
                realism = gr.Slider(0, 1, value=0, step=REALISM_STEP, elem_id="realism", visible=page.blends,
                                    label="Realism: 0 keeps closest to the photo (the faithful model); towards 1, "
                                          "crisper, more natural textures (the perceptual model), a little further "
                                          "from the photo")
                button = gr.Button("Restore", variant="primary", elem_id="restore")
            with gr.Column():
                compare = gr.Dropdown([], label="Compare", elem_id="compare", visible=False, interactive=True)
                slider = gr.ImageSlider(label="Before (left) / restored (right)", elem_id="comparison",
                                        type="numpy")
                gr.Markdown("Drag the divider to compare. Compression artefacts are small: open the picture full "
                            "screen (its top-right button) to see it at full size.", elem_id="comparison-help")
                downloads = gr.File(label="Restored files", file_count="multiple", elem_id="downloads")
                report = gr.Markdown(elem_id="report")
        told.change(lambda choice: gr.Slider(interactive=choice == MODES[2]), told, quality, api_visibility="private")
        button.click(page.restore, [files, told, quality, realism], [downloads, slider, report, comparisons],
                     api_name="restore", concurrency_limit=1).then(
            _compare_choices, comparisons, compare, api_visibility="private")
        compare.change(_compare, [comparisons, compare], slider, api_visibility="private")
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
