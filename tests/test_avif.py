"""AVIF's quantizer read from files written by libavif (through Pillow), checked against ffmpeg's header trace."""

import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image, features

from qgac_jax.codecs import avif, heif
from conftest import coffee, encoded, jpeg_bytes, natural_image

pytestmark = pytest.mark.skipif(not features.check("avif"), reason="this Pillow writes no AVIF")




def _trace(obu: bytes, tmp_path) -> dict:
    """{field: [values]} of ffmpeg's trace_headers over an AV1 stream (an independent AV1 header parser)."""
    delimiter = b"\x12\x00"  # ffmpeg's OBU reader wants each temporal unit to start with one
    (tmp_path / "a.obu").write_bytes(obu if obu.startswith(delimiter) else delimiter + obu)
    err = subprocess.run(["ffmpeg", "-hide_banner", "-f", "obu", "-i", str(tmp_path / "a.obu"), "-c", "copy", "-bsf:v",
                          "trace_headers", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    fields = {}
    for name, value in re.findall(r"\]\s+\d+\s+([\w.\[\]]+)\s+[01]+ = (-?\d+)", err):
        fields.setdefault(name, []).append(int(value))
    return fields


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
@pytest.mark.parametrize("mode, quality", [("RGB", 10), ("RGB", 50), ("RGB", 90), ("L", 40), ("444", 30)])
def test_header_agrees_with_ffmpegs_trace(tmp_path, mode, quality):
    img = coffee() if mode != "L" else np.asarray(Image.fromarray(coffee()).convert("L"))
    data = encoded(img, "AVIF", quality=quality, **({"subsampling": "4:4:4"} if mode == "444" else {}))
    got = avif.read_quantization(data)
    trace = _trace(heif.primary_item(data).data, tmp_path)
    assert got.base_q_idx == trace["base_q_idx"][0]
    expected = [trace.get(f"delta_q_{k}.delta_q", [0])[0] for k in ("y_dc", "u_dc", "u_ac")]
    assert list(got.deltas[:3]) == expected and "delta_q_y_dc.delta_coded" in trace
    assert (got.qm_levels is not None) == bool(trace["using_qmatrix"][0])
    if got.qm_levels:
        assert got.qm_levels[:2] == (trace["qm_y"][0], trace["qm_u"][0])
    assert got.segment_q <= bool(trace["segmentation_enabled"][0])
    assert got.delta_q == bool(trace.get("delta_q_present", [0])[0])
    assert (got.width, got.height) == (600, 400)
    assert got.monochrome == (mode == "L") and got.subsampling == ((0, 0) if mode == "444" else (1, 1))


def test_quality_orders_the_index_and_the_qmap_holds_its_steps():
    got = [avif.read_quantization(encoded(coffee(), "AVIF", quality=q)) for q in (10, 50, 90)]
    assert got[0].base_q_idx > got[1].base_q_idx > got[2].base_q_idx
    q = got[1]
    qmap = q.qmap(400, 600) * 255 * avif.ORTHONORMAL_GAIN
    u_ac = avif.AC_STEPS[q.base_q_idx + q.deltas[2]]
    np.testing.assert_allclose(qmap[..., 0], avif.AC_STEPS[q.base_q_idx], rtol=1e-6)
    np.testing.assert_allclose(qmap[..., 1], u_ac, rtol=1e-6)
    assert avif.DC_STEPS[0] == avif.AC_STEPS[0] == 4 and avif.DC_STEPS[255] == 1336 and avif.AC_STEPS[255] == 1828


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
@pytest.mark.parametrize("frames, crf", [(1, 20), (1, 45), (3, 35)])
def test_full_sequence_headers_of_libaom_stills_and_animations_agree_with_ffmpegs_trace(tmp_path, frames, crf):
    """libaom through ffmpeg writes a full sequence header (operating points, order hints, frame size flags),
    not libavif's reduced one; an animated AVIF is read at its first frame."""
    Image.fromarray(coffee()[:200, :296]).save(tmp_path / "in.png")
    out = tmp_path / "out.avif"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-loop", "1", "-i", str(tmp_path / "in.png"),
                    "-frames:v", str(frames), "-c:v", "libaom-av1", "-crf", str(crf), "-cpu-used", "8", str(out)],
                   check=True, timeout=120)
    data = out.read_bytes()
    got = avif.read_quantization(data)
    trace = _trace(heif.primary_item(data).data, tmp_path)
    assert trace["reduced_still_picture_header"][0] == 0
    assert got.base_q_idx == trace["base_q_idx"][0] and (got.width, got.height) == (296, 200)
    assert got.delta_q == bool(trace.get("delta_q_present", [0])[0])


def test_truncated_and_other_files_are_value_errors():
    data = encoded(natural_image(64, 96), "AVIF", quality=40)
    for cut in (10, 60, len(data) // 2, len(data) - 5):
        with pytest.raises(ValueError):
            avif.read_quantization(data[:cut])
    with pytest.raises(avif.NotAvif):
        avif.read_quantization(jpeg_bytes(natural_image(16, 16)))


def test_av1_steps_divided_by_the_gain_meet_hevcs_at_both_ends():
    """AV1's 8-bit steps are 8 times orthonormal ones: its coarsest step over 8 is HEVC's at QP 51 (whose steps
    are orthonormal by definition), and its finest is HEVC's near QP 0."""
    from qgac_jax.codecs import heic

    assert avif.AC_STEPS[255] / avif.ORTHONORMAL_GAIN == pytest.approx(heic.qp_step(51), rel=0.01)
    assert avif.AC_STEPS[0] / avif.ORTHONORMAL_GAIN == pytest.approx(heic.qp_step(-2), rel=0.01)


def test_an_image_sequence_without_a_primary_item_is_read_at_its_first_frame():
    from qgac_jax.files.images import decode

    frames = [Image.fromarray(natural_image(64, 48, seed=k)) for k in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "AVIF", save_all=True, append_images=frames[1:], quality=50)
    with_item = buf.getvalue()
    at = with_item.index(b"pitm")
    sequence = with_item[:at] + b"free" + with_item[at + 4:]  # as libavif's Chimera test file: no primary item
    first = avif.read_quantization(sequence)
    assert first.sequence and first.base_q_idx == avif.read_quantization(with_item).base_q_idx
    assert (first.width, first.height) == (48, 64) and first.describe().endswith("(the first frame of a sequence)")
    d = decode(sequence)
    assert d.recorded.sequence and d.pixels.shape == (64, 48, 3)
    cut = sequence[:len(sequence) - 3000]  # the frames' data cut short
    with pytest.raises(ValueError):
        avif.read_quantization(cut)
