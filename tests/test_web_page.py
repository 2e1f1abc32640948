"""The restoring web page in a real browser (Debian's Chromium driven by Playwright) and through gradio_client.

The app runs as `python -m qgac_jax.app` on a free local port; every request the browser makes outside
127.0.0.1 is recorded and refused, so the page is shown to work offline.
"""

import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import jpeg_bytes, natural_image

pytest.importorskip("gradio", reason="the web page needs the extra `app`")
from qgac_jax.apps import web_page  # noqa: E402
from qgac_jax.files import clips  # noqa: E402
from qgac_jax.models import shipped  # noqa: E402
from qgac_jax.files.images import DEFAULT_MAX_PIXELS  # noqa: E402
pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = pathlib.Path("/usr/bin/chromium")
MAX_PIXELS = 2_000_000  # the app's --max-pixels: uploads above 3 bytes a pixel and 1 MB (7 MB) are turned away
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on a free port: (URL, seconds it took to answer, its stderr file)."""
    port, logs = _free_port(), tmp_path_factory.mktemp("app")
    err = open(logs / "stderr.txt", "w")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRADIO_TEMP_DIR=str(logs / "gradio"), TMPDIR=str(logs))
    start = time.perf_counter()
    command = [sys.executable, "-m", "qgac_jax.app", "--port", str(port), "--max-pixels", str(MAX_PIXELS)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=err, text=True)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.perf_counter() - start > 240:
                raise AssertionError((logs / "stderr.txt").read_text()[-3000:])
            time.sleep(0.5)
    yield url, time.perf_counter() - start, logs
    proc.terminate()
    proc.wait(timeout=30)
    err.close()


def _restore_cli(path, out, *args):
    from qgac_jax import restore

    assert restore.run([str(path), "--output", str(out), *args]) == 0
    return (out / (path.stem + ".png")).read_bytes()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import skimage.data

    path = tmp_path_factory.mktemp("photo") / "coffee.jpg"
    Image.fromarray(skimage.data.coffee()[:96, :128]).save(path, quality=20)
    return path


def test_the_browser_restores_downloads_changes_the_guide_and_shows_errors(app, photo, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (CI installs Debian's chromium)")
    url, _, logs = app
    expected = _restore_cli(photo, tmp_path / "cli")
    stronger = _restore_cli(photo, tmp_path / "cli5", "--quality", "5")
    outside = []

    def offline(route):
        if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True)
        page.route("**/*", offline)
        page.goto(url)
        page.locator("#photos input[type=file]").set_input_files(str(photo))
        page.locator("#restore").click()
        link = page.locator("#downloads a[download], #downloads a[href]").first
        link.wait_for(timeout=120_000)
        page.locator("#report").get_by_text("coffee.jpg: file tables about quality 20").wait_for(timeout=60_000)
        with page.expect_download() as download:
            link.click()
        download.value.save_as(tmp_path / "page.png")
        assert (tmp_path / "page.png").read_bytes() == expected  # the same bytes restore writes
        page.get_by_text("coffee.jpg: before (left), restored (right)").wait_for(timeout=10_000)
        page.screenshot(path=str(tmp_path / "page.png.screenshot.png"), full_page=True)
        text = page.locator("body").inner_text()
        assert f"up to {web_page.megabytes(web_page.upload_limit(MAX_PIXELS))} and 2 megapixels" in text
        assert "What the network is told" not in text and "auto:" not in text  # the page's words, not the flags'
        assert (f"clips up to {web_page.CLIP_SECONDS:g} seconds" in text) == clips.available()  # (PyAV or not)
        assert page.locator("#realism").is_visible() == (shipped.default_checkpoint(3, "perceptual") is not None)
        assert ("Realism: 0 keeps closest to the photo" in text) == page.locator("#realism").is_visible()

        # two photos: each restored one has its own labelled before / after
        (tmp_path / "second.jpg").write_bytes(photo.read_bytes())
        page.locator("#photos input[type=file]").set_input_files([str(photo), str(tmp_path / "second.jpg")])
        page.locator("#restore").click()
        page.locator("#report").get_by_text("second.jpg: file tables about quality 20").wait_for(timeout=120_000)
        page.get_by_text("coffee.jpg: before (left), restored (right)").wait_for(timeout=10_000)
        page.locator("#compare input").click()
        page.get_by_role("option", name="second.jpg").click()
        page.get_by_text("second.jpg: before (left), restored (right)").wait_for(timeout=10_000)
        assert page.locator("#comparison img").count() >= 2

        page.reload()  # (the photo input adds to what it holds: a fresh page holds nothing)
        quality = page.locator("#quality input[type=number]")
        quality.wait_for()
        assert quality.is_disabled()  # the quality only matters to the last choice: it looks inactive until then
        page.get_by_label(web_page.MODES[2]).check()
        quality.wait_for(state="visible")
        page.wait_for_function("!document.querySelector('#quality input[type=number]').disabled", timeout=10_000)
        page.locator("#quality input[type=number]").fill("5")
        page.locator("#quality input[type=number]").press("Enter")
        page.locator("#photos input[type=file]").set_input_files(str(photo))
        page.locator("#restore").click()
        page.locator("#report").get_by_text("coffee.jpg: told IJG tables of quality 5 (chosen on the page)").wait_for(
            timeout=120_000)
        with page.expect_download() as download:
            page.locator("#downloads a[download], #downloads a[href]").first.click()
        download.value.save_as(tmp_path / "strong.png")
        assert (tmp_path / "strong.png").read_bytes() == stronger != expected

        (tmp_path / "notes.jpg").write_text("just some text, not a picture\n")
        page.get_by_label(web_page.MODES[0]).check()
        page.locator("#photos input[type=file]").set_input_files(str(tmp_path / "notes.jpg"))
        page.locator("#restore").click()
        page.locator("#report").get_by_text("error: notes.jpg: not an image file").wait_for(timeout=60_000)
        browser.close()
    assert outside == []  # no font, script or analytics from the internet
    assert (tmp_path / "page.png.screenshot.png").stat().st_size > 10_000


def test_the_browser_restores_a_clip_and_compares_its_first_frame(app, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (CI installs Debian's chromium)")
    from _clips import make_clip

    make_clip(tmp_path / "pan.mp4", "h264", frames=12, crf=35)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True)
        page.goto(app[0])
        page.get_by_text(f"clips up to {web_page.CLIP_SECONDS:g} seconds", exact=False).wait_for(timeout=60_000)
        page.locator("#photos input[type=file]").set_input_files(str(tmp_path / "pan.mp4"))
        page.locator("#restore").click()
        page.locator("#report").get_by_text("pan.mp4: restored 12 frames").wait_for(timeout=120_000)
        page.get_by_text("pan.mp4 (first frame): before (left), restored (right)").wait_for(timeout=10_000)
        with page.expect_download() as download:
            page.locator("#downloads a[download], #downloads a[href]").first.click()
        download.value.save_as(tmp_path / "pan_restored.mp4")
        browser.close()
    assert clips.probe(tmp_path / "pan_restored.mp4").codec == "h264"


def test_gradio_client_gets_restores_png_and_hostile_uploads_get_a_line_each(app, photo, tmp_path):
    from gradio_client import Client, handle_file

    url, started_s, logs = app
    client = Client(url, verbose=False)
    downloads, _, report = client.predict([handle_file(str(photo))], api_name="/restore")
    assert pathlib.Path(downloads[0]).read_bytes() == _restore_cli(photo, tmp_path / "cli")

    small = jpeg_bytes(natural_image(16, 16), quality=50)
    at = small.find(b"\xff\xc0")
    hostile = {"bomb.jpg": small[:at + 5] + (60000).to_bytes(2, "big") * 2 + small[at + 9:],
               "truncated.jpg": jpeg_bytes(natural_image(160, 200), quality=60)[:3000],
               "empty.jpg": b"", "text.jpg": b"no picture here\n"}
    for name, data in hostile.items():
        (tmp_path / name).write_bytes(data)
    files = [handle_file(str(tmp_path / name)) for name in hostile]
    downloads, comparison, report = client.predict(files, api_name="/restore")
    lines = report.split("\n\n")
    assert not downloads and comparison is None and len(lines) == 4, report
    assert "bomb.jpg: " in report and "--max-pixels" in report and "empty" in report and "not an image" in report
    assert "truncated.jpg: " in report and "Traceback" not in report
    again, _, _ = client.predict([handle_file(str(photo))], api_name="/restore")  # still serving
    assert np.asarray(Image.open(again[0])).shape == (96, 128, 3)
    print(f"app answered {started_s:.1f} s after it was started")


def test_the_realism_slider_restores_as_restore_realism_does_and_1_is_the_perceptual_model(app, photo, tmp_path):
    from gradio_client import Client, handle_file

    if shipped.default_checkpoint(3, "perceptual") is None:
        pytest.skip("this version ships one model")
    url, _, logs = app
    client = Client(url, verbose=False)
    restored = {}
    for r in (1.0, 0.5):
        downloads, _, _ = client.predict([handle_file(str(photo))], web_page.MODES[0], 50, r, api_name="/restore")
        restored[r] = pathlib.Path(downloads[0]).read_bytes()
    assert restored[1.0] == _restore_cli(photo, tmp_path / "cli", "--model", "perceptual")
    assert restored[0.5] == _restore_cli(photo, tmp_path / "half", "--realism", "0.5")
    assert len({restored[1.0], restored[0.5], _restore_cli(photo, tmp_path / "psnr")}) == 3
    assert "request: 1 file(s), realism 0.5, auto: restored 1" in (logs / "stderr.txt").read_text()


def test_a_realism_out_of_range_is_one_line_and_a_checkpoint_page_has_no_slider(photo, colour_export):
    from qgac_jax.commands.jobs import Settings

    page = web_page.Page(Settings())
    pngs, comparison, report, _ = page.restore([str(photo)], realism=3, progress=lambda *a, **k: None)
    assert pngs == [] and comparison is None and report == ("error: the realism must be from 0 (faithful) to 1 "
                                                            "(perceptual), got 3")
    own = web_page.Page(Settings(checkpoint=str(colour_export)))
    assert not own.blends
    pngs, _, report, _ = own.restore([str(photo)], realism=0.5, progress=lambda *a, **k: None)
    assert pngs == [] and report.startswith("error: this page restores with one model")
    pngs, _, report, _ = own.restore([str(photo)], realism=0, progress=lambda *a, **k: None)
    assert len(pngs) == 1, report


def test_each_upload_of_a_request_succeeds_or_fails_alone_under_a_distinct_name(app, photo, tmp_path):
    from gradio_client import Client, handle_file

    from test_images import _exif_jpeg

    url, _, logs = app
    client = Client(url, verbose=False)
    (tmp_path / "x").mkdir()
    (tmp_path / "a.jpg").write_bytes(photo.read_bytes())
    (tmp_path / "x" / "a.webp").write_bytes(_webp(natural_image(48, 64)))
    (tmp_path / "odd.jpg").write_bytes(_exif_jpeg(b"\x01\x12\x00\x08\x00\x00\x00\x01\xff\xfd\x00\x00"))  # SSHORT -3
    (tmp_path / "text.jpg").write_bytes(b"no picture here\n")
    uploads = [tmp_path / "a.jpg", tmp_path / "odd.jpg", tmp_path / "text.jpg", tmp_path / "x" / "a.webp"]
    downloads, comparison, report = client.predict([handle_file(str(p)) for p in uploads], api_name="/restore")
    assert sorted(pathlib.Path(d).name for d in downloads) == ["a.jpg.png", "a.webp.png", "odd.png"], report
    assert comparison is not None and "error: text.jpg: not an image" in report
    assert "warning: odd.jpg: its EXIF orientation -3 is not one of 1..8" in report
    assert "(saved as a.jpg.png)" in report and "(saved as a.webp.png)" in report
    _, _, nothing = client.predict([], api_name="/restore")
    assert nothing == "Choose one or more photos first."
    (tmp_path / "big.jpg").write_bytes(photo.read_bytes() + b"\0" * (8 * 2**20))  # over the 7 MB upload limit
    with pytest.raises(Exception, match="(?i)size|large|limit"):
        client.predict([handle_file(str(tmp_path / "big.jpg"))], api_name="/restore")
    for refused in (("nonsense", 50), (web_page.MODES[2], 500)):  # Gradio refuses these before the page runs
        with pytest.raises(Exception, match="not in the list of choices|greater than maximum"):
            client.predict([handle_file(str(photo))], *refused, api_name="/restore")
    again, _, _ = client.predict([handle_file(str(photo))], api_name="/restore")  # still serving
    assert len(again) == 1
    log = (logs / "stderr.txt").read_text()
    assert "Traceback" not in log and "refused a request: 'Value 500 is greater than maximum value 100.'" in log
    assert "request: 4 file(s), realism 0, auto: restored 3, failed 1," in log  # one per request


def test_a_short_clip_is_restored_as_restore_restores_it_and_a_long_one_is_one_line(tmp_path, monkeypatch):
    from _clips import make_clip
    from qgac_jax.commands import jobs
    from qgac_jax.files import clips

    make_clip(tmp_path / "clip.mp4", "h264", frames=12, crf=35, audio=True)
    make_clip(tmp_path / "mpeg2.mkv", "mpeg2video", frames=3, crf=None)
    (tmp_path / "long").mkdir()
    make_clip(tmp_path / "long" / "clip.mp4", "h264", frames=12, crf=35)
    page = web_page.Page(jobs.Settings(backend="jax", max_pixels=MAX_PIXELS))
    uploads = [str(tmp_path / "clip.mp4"), str(tmp_path / "mpeg2.mkv")]
    files, first, report, comparisons = page.restore(uploads, progress=lambda *a, **k: None)
    lines = report.split("\n\n")
    assert [pathlib.Path(f).name for f in files] == ["clip.mp4"], report
    assert re.match(r"clip\.mp4: restored 12 frames \(H\.264 128x96, [\d.]+ fps, 12 frames\), each frame told its "
                    r"own quantizers \([\d.]+ s\)$", lines[0]), lines[0]
    assert lines[1].startswith("error: mpeg2.mkv: MPEG-2 video video: only H.264, HEVC, VP9 and AV1 clips")
    out = clips.probe(files[0])
    assert (out.codec, out.width, out.height, out.others) == ("h264", 128, 96, 1)  # its sound came along
    assert list(comparisons) == ["clip.mp4 (first frame)"] and first.label.startswith("clip.mp4 (first frame): before")
    before, after = comparisons["clip.mp4 (first frame)"]
    assert before.shape == after.shape == (96, 128, 3) and not np.array_equal(before, after)
    monkeypatch.setattr(web_page, "CLIP_SECONDS", 0.4)  # (the 12-frame clips last 0.504 s)
    files, _, report, _ = page.restore([str(tmp_path / "long" / "clip.mp4")], progress=lambda *a, **k: None)
    assert files == [] and report == ("error: clip.mp4: the clip is 0.5 s long; the page restores clips up to 0.4 s "
                                      "(restore longer ones with qgac-restore)")


def test_the_upload_limit_is_one_number_on_the_page_and_in_its_docs():
    limit = web_page.megabytes(web_page.upload_limit(DEFAULT_MAX_PIXELS))
    assert limit == "151 MB" and f"({limit} at the" in (ROOT / "docs" / "web_page.md").read_text()


def _webp(pixels) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "WEBP", quality=40)
    return buf.getvalue()


def test_the_hugging_face_space_assembles_and_its_app_builds_the_page(tmp_path):
    import runpy
    import zipfile

    proc = subprocess.run(["bash", str(ROOT / "deploy" / "huggingface_space" / "build.sh"), str(tmp_path / "space")],
                          env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    space = tmp_path / "space"
    (wheel,) = space.glob("qgac_jax-*.whl")
    requirements = (space / "requirements.txt").read_text().split()
    assert requirements == [f"./{wheel.name}[app]"]
    with zipfile.ZipFile(wheel) as z:  # the shipped models and their graphs travel inside the wheel
        assert any(n.startswith("qgac_jax/pretrained/colour/") for n in z.namelist())
        assert any(n.startswith("qgac_jax/pretrained/graphs/") and n.endswith(".onnx") for n in z.namelist())
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert "onnxruntime" in meta and any(line.startswith("Requires-Dist: gradio") and 'extra == "app"' in line
                                         for line in meta.splitlines())
    card = (space / "README.md").read_text()
    assert "sdk: gradio" in card and "app_file: app.py" in card
    demo = runpy.run_path(str(space / "app.py"))["demo"]  # built, not launched
    assert [d["api_name"] for d in demo.config["dependencies"] if d.get("api_visibility") != "private"] == ["restore"]
