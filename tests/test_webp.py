"""WebP's quantization read from real libwebp files, checked against what libwebp's own tools report."""

import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from qgac_jax.codecs import webp
from conftest import coffee, encoded, natural_image

needs_webp_tools = pytest.mark.skipif(shutil.which("cwebp") is None or shutil.which("webpinfo") is None,
                                      reason="libwebp's cwebp and webpinfo are not installed (apt-get install webp)")




@needs_webp_tools
@pytest.mark.parametrize("quality", [10, 75])
def test_header_and_segment_map_agree_with_libwebps_tools(tmp_path, quality):
    Image.fromarray(coffee()).save(tmp_path / "in.png")
    encoded = subprocess.run(["cwebp", "-q", str(quality), "-v", str(tmp_path / "in.png"), "-o",
                              str(tmp_path / "a.webp")], capture_output=True, text=True, check=True).stderr
    info = subprocess.run(["webpinfo", "-bitstream_info", str(tmp_path / "a.webp")], capture_output=True, text=True,
                          check=True).stdout
    field = lambda name: [int(v) for v in re.search(rf"{name}:\s+([-\d ]+)\n", info).group(1).split()]  # noqa: E731
    got = webp.read_quantization((tmp_path / "a.webp").read_bytes())
    assert got.base_index == field("Base Q")[0]
    assert list(got.deltas) == [field(f"DQ {k}")[0] for k in ("Y1 DC", "Y2 DC", "Y2 AC", "UV DC", "UV AC")]
    assert list(got.segment_indices) == field("Quantizer")  # (libwebp writes them absolute)
    # the encoder's own report: each segment's share of macroblocks, its quantizer, and the 16x16-predicted count
    shares = [int(v) for v in re.search(r"macroblocks:\s*\|(.*)\|\s*\d+", encoded).group(1).replace("%", "").split("|")]
    counts = np.bincount(got.segment_map.ravel(), minlength=4)
    assert got.segment_map.shape == (25, 38) and counts.sum() == 950
    assert np.allclose(100 * counts / 950, shares, atol=0.5), (counts, shares)
    reported = re.search(r"quantizer:\s*\|(.*)\|", encoded).group(1).split("|")
    assert list(got.segment_indices) == [int(v) for v in reported]
    assert got.whole_mb.sum() == int(re.search(r"intra16:\s+(\d+)", encoded).group(1))


def test_smooth_and_textured_halves_get_the_quantization_their_segments_say():
    rng = np.random.default_rng(0)
    img = np.zeros((256, 256, 3), np.uint8)
    img[:, :128] = np.linspace(60, 200, 128, dtype=np.uint8)[None, :, None]  # smooth
    img[:, 128:] = rng.integers(0, 256, (256, 128, 3), dtype=np.uint8)  # texture
    got = webp.read_quantization(encoded(img, "WEBP", quality=50))
    left, right = got.segment_map[:, :8], got.segment_map[:, 8:]
    index = np.array(got.segment_indices)
    assert index[right].mean() > index[left].mean() + 5  # libwebp spends fewer bits on texture, which hides errors
    qmap = got.qmap(256, 256)
    for r in range(16):
        for c in range(16):
            steps = got.steps(int(got.segment_map[r, c]))
            ac = qmap[16 * r + 1, 16 * c + 1, 0] * 255 * 2  # an AC position of the macroblock's first 4x4 block
            assert ac == pytest.approx(steps["y_ac"])
            assert qmap[16 * r + 2, 16 * c + 2, 1] * 255 * 2 == pytest.approx(steps["uv_ac"])
    assert len(set(np.round(qmap[1::16, 1::16, 0].ravel() * 255))) > 1  # the map is spatial


def test_qmap_puts_dc_ac_and_y2_steps_where_the_transforms_have_them():
    got = webp.read_quantization(encoded(coffee(), "WEBP", quality=30))
    qmap = got.qmap(got.height, got.width) * 255 * 2  # VP8's steps, from orthonormal-equivalent ones
    assert qmap.shape == (400, 600, 2)
    whole = np.argwhere(got.whole_mb)[0]
    split = np.argwhere(~got.whole_mb)[0]
    for (r, c), is_whole in ((whole, True), (split, False)):
        s = got.steps(int(got.segment_map[r, c]))
        y, x = 16 * r, 16 * c
        y2 = 2 if is_whole else 1  # Y2's coefficients are twice the luma DCs' scale again
        assert qmap[y, x, 0] * y2 == pytest.approx(s["y2_dc"] if is_whole else s["y_dc"])
        assert qmap[y + 4, x + 8, 0] * y2 == pytest.approx(s["y2_ac"] if is_whole else s["y_dc"])
        assert qmap[y + 3, x + 5, 0] == pytest.approx(s["y_ac"])
        assert qmap[y + 1, x + 9, 1] == pytest.approx(s["uv_dc"])  # chroma (0, 4): a 4x4 block's DC
        assert qmap[y + 2, x + 9, 1] == pytest.approx(s["uv_ac"])


def test_quality_orders_the_quantizers_and_the_header_alone_reads_the_same_indices():
    indices = []
    for q in (10, 50, 90):
        data = encoded(coffee(), "WEBP", quality=q)
        full, header = webp.read_quantization(data), webp.read_header(data)
        assert (header.base_index, header.deltas, header.segment_indices, header.width, header.height) == (
            full.base_index, full.deltas, full.segment_indices, full.width, full.height)
        assert header.describe() == full.describe() and full.describe().startswith("VP8 quantizer index ")
        indices.append(header.base_index)
    assert indices[0] > indices[1] > indices[2]


def test_lossless_animated_truncated_and_other_files():
    img = natural_image(64, 80)
    with pytest.raises(webp.NotLossyWebp, match="lossless"):
        webp.read_quantization(encoded(img, "WEBP", lossless=True))
    frames = [Image.fromarray(img), Image.fromarray(img[::-1])]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], quality=40, duration=100)
    animated = webp.read_quantization(buf.getvalue())
    assert animated.animated and animated.segment_map.shape == (4, 5)
    data = encoded(natural_image(160, 200), "WEBP", quality=40)
    first = int.from_bytes(data[20:23], "little") >> 5  # the header partition's size (after RIFF, VP8 chunk)
    for cut in (20, 40, 30 + first // 2):
        with pytest.raises(ValueError):
            webp.read_quantization(data[:cut])
    assert webp.read_quantization(data[:30 + first + 10]).base_index > 0  # coefficients cut: the header reads
    png = io.BytesIO()
    Image.fromarray(img).save(png, "PNG")
    with pytest.raises(webp.NotLossyWebp, match="not a WebP"):
        webp.read_quantization(png.getvalue())


def _vp8_idct(coeffs):
    """RFC 6386 section 14.3's inverse DCT (vp8_short_idct4x4llm_c), transcribed: [4, 4] -> [4, 4] residue."""
    c1, s1 = 20091, 35468
    tmp = np.zeros((4, 4), np.int64)
    for i in range(4):  # columns
        ip = coeffs[:, i]
        a1, b1 = ip[0] + ip[2], ip[0] - ip[2]
        c = (ip[1] * s1 >> 16) - (ip[3] + (ip[3] * c1 >> 16))
        d = (ip[1] + (ip[1] * c1 >> 16)) + (ip[3] * s1 >> 16)
        tmp[:, i] = [a1 + d, b1 + c, b1 - c, a1 - d]
    out = np.zeros((4, 4), np.int64)
    for i in range(4):  # rows
        ip = tmp[i]
        a1, b1 = ip[0] + ip[2], ip[0] - ip[2]
        c = (ip[1] * s1 >> 16) - (ip[3] + (ip[3] * c1 >> 16))
        d = (ip[1] + (ip[1] * c1 >> 16)) + (ip[3] * s1 >> 16)
        out[i] = [(a1 + d + 4) >> 3, (b1 + c + 4) >> 3, (b1 - c + 4) >> 3, (a1 - d + 4) >> 3]
    return out


def _vp8_iwht(coeffs):
    """RFC 6386 section 14.3's inverse Walsh-Hadamard transform (vp8_short_inv_walsh4x4_c), transcribed."""
    tmp = np.zeros((4, 4), np.int64)
    for i in range(4):
        ip = coeffs[:, i]
        a1, b1, c1, d1 = ip[0] + ip[3], ip[1] + ip[2], ip[1] - ip[2], ip[0] - ip[3]
        tmp[:, i] = [a1 + b1, c1 + d1, a1 - b1, d1 - c1]
    out = np.zeros((4, 4), np.int64)
    for i in range(4):
        ip = tmp[i]
        a1, b1, c1, d1 = ip[0] + ip[3], ip[1] + ip[2], ip[1] - ip[2], ip[0] - ip[3]
        out[i] = [(a1 + b1 + 3) >> 3, (c1 + d1 + 3) >> 3, (a1 - b1 + 3) >> 3, (d1 - c1 + 3) >> 3]
    return out


@pytest.mark.parametrize("position", [(0, 0), (0, 1), (2, 3), (3, 3)])
def test_the_qmap_scale_is_what_vp8s_own_inverse_transforms_make_of_a_step(position):
    """The map holds orthonormal-equivalent steps: a VP8 coefficient of one step becomes a residue of half a
    step's energy (an orthonormal transform's would have one step's), and a Y2 coefficient a quarter."""
    step = 8000  # large (and a multiple of 8), so the transforms' rounding does not matter
    coeffs = np.zeros((4, 4), np.int64)
    coeffs[position] = step
    assert np.sqrt((_vp8_idct(coeffs).astype(float) ** 2).sum()) / step == pytest.approx(0.5, rel=0.01)
    dcs = _vp8_iwht(coeffs)  # the 16 luma DCs a Y2 coefficient makes, each then one block's inverse DCT
    residue = np.block([[_vp8_idct(np.pad([[dc]], ((0, 3), (0, 3)))) for dc in row] for row in dcs])
    assert np.sqrt((residue.astype(float) ** 2).sum()) / step == pytest.approx(0.25, rel=0.01)
