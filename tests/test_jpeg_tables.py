import io

import numpy as np
import pytest
from PIL import Image

from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax.codecs import jpeg
from conftest import jpeg_bytes, natural_image


def test_ijg_tables_equal_what_pillow_writes_for_every_quality():
    img = natural_image(16, 16)
    for quality in range(1, 101):
        got = jpeg.read_quantization(jpeg_bytes(img, quality=quality))
        luma, chroma = qz.ijg_tables(quality)
        np.testing.assert_array_equal(got.luma, luma, err_msg=f"luma q{quality}")
        np.testing.assert_array_equal(got.chroma, chroma, err_msg=f"chroma q{quality}")


def test_ijg_known_values():
    luma, _ = qz.ijg_tables(10)
    assert luma[0, :8].tolist() == [80, 55, 50, 80, 120, 200, 255, 255]
    assert np.all(qz.ijg_tables(100)[0] == 1)
    np.testing.assert_array_equal(qz.ijg_tables(50)[0], qz.ANNEX_K_LUMA)


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
def test_custom_tables_and_subsampling_read_back(subsampling):
    rng = np.random.default_rng(1)
    luma, chroma = qz.random_tables(rng)
    data = jpeg_bytes(
        natural_image(40, 56),
        qtables=[luma.ravel().tolist(), chroma.ravel().tolist()],
        subsampling=qz.PILLOW_SUBSAMPLING[subsampling],
    )
    got = jpeg.read_quantization(data)
    np.testing.assert_array_equal(got.luma, luma)
    np.testing.assert_array_equal(got.chroma, chroma)
    assert got.subsampling == subsampling


def test_grey_file_and_path_source(tmp_path):
    path = tmp_path / "grey.jpg"
    Image.fromarray(natural_image()[..., 0]).save(path, quality=37)
    got = jpeg.read_quantization(path)
    assert got.is_grey and got.subsampling is None
    np.testing.assert_array_equal(got.luma, qz.ijg_tables(37)[0])
    assert got.qmap(9, 11).shape == (9, 11, 1)


def test_qmap_tiling_luma_and_420_chroma():
    luma, chroma = qz.random_tables(np.random.default_rng(2), "smooth")
    m = qz.qmap(luma, chroma, 53, 70, "4:2:0")
    assert m.shape == (53, 70, 2) and m.dtype == np.float32
    for i in range(53):
        for j in range(70):
            assert m[i, j, 0] == np.float32(luma[i % 8, j % 8] * qz.QMAP_SCALE)
            assert m[i, j, 1] == np.float32(chroma[(i // 2) % 8, (j // 2) % 8] * qz.QMAP_SCALE)


def test_qmap_chroma_block_sizes():
    luma, chroma = qz.ijg_tables(30)
    # 4:2:2: one chroma block spans 8 rows x 16 columns.
    m = qz.qmap(luma, chroma, 16, 32, "4:2:2")[..., 1]
    assert m[3, 5] == np.float32(chroma[3, 2] * qz.QMAP_SCALE)
    np.testing.assert_array_equal(m[:8, :16], m[8:, 16:])
    m444 = qz.qmap(luma, chroma, 16, 16, "4:4:4")[..., 1]
    np.testing.assert_array_equal(m444[:8, :8], (chroma * qz.QMAP_SCALE).astype(np.float32))
    assert qz.qmap(luma, None, 5, 6).shape == (5, 6, 1)


def test_random_tables_cover_all_families_and_are_valid():
    rng = np.random.default_rng(0)
    ijg = {tuple(qz.ijg_tables(q)[0].ravel()) for q in range(1, 101)}
    non_ijg = 0
    for kind in ("ijg_jitter", "annex_k_power", "smooth", "any"):
        for _ in range(50):
            luma, chroma = qz.random_tables(rng, kind)
            for t in (luma, chroma):
                assert t.shape == (8, 8) and t.dtype == np.int32
                assert t.min() >= 1 and t.max() <= 255
            non_ijg += tuple(luma.ravel()) not in ijg
    assert non_ijg > 190  # almost none falls back onto an IJG table
    # Same generator state -> same tables (pure given the key).
    a = qz.random_tables(np.random.default_rng(5))
    b = qz.random_tables(np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize(
    "table, message",
    [
        (np.ones((4, 4)), "64 entries"),
        (np.zeros((8, 8)), "< 1"),
        (np.full((8, 8), 256), "> 255"),
        (np.full((8, 8), 1.5), "whole numbers"),
    ],
)
def test_bad_tables_raise_clear_errors(table, message):
    with pytest.raises(ValueError, match=message):
        qz.qmap(table, None, 8, 8)
    with pytest.raises(ValueError, match=message):
        jpeg.JpegQuantization(table)


@pytest.mark.parametrize("quality", [0, 101, -5, 2.5, True])
def test_bad_quality_raises(quality):
    with pytest.raises(ValueError, match="quality"):
        qz.ijg_tables(quality)


def test_non_jpeg_sources_raise_value_error(tmp_path):
    png = tmp_path / "x.png"
    Image.fromarray(natural_image(8, 8)).save(png)
    with pytest.raises(ValueError, match="not a JPEG file"):
        jpeg.read_quantization(png)
    with pytest.raises(ValueError, match="not a readable JPEG"):
        jpeg.read_quantization(b"definitely not an image")
    with pytest.raises(ValueError, match="not a readable JPEG"):
        jpeg.read_quantization(tmp_path / "missing.jpg")
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(natural_image(16, 16)).convert("CMYK").save(cmyk)
    with pytest.raises(ValueError, match="CMYK"):
        jpeg.read_quantization(cmyk)
    with pytest.raises(ValueError, match="subsampling"):
        qz.qmap(np.ones((8, 8)), np.ones((8, 8)), 8, 8, "4:9:9")


def test_a_separate_cr_table_raises_the_chroma_q_map_to_the_coarser_step():
    luma, cb = qz.ijg_tables(60)
    cr = cb.copy()
    cr[:4, :4] = 90  # Cr coarser in the low frequencies, finer elsewhere
    cr[4:, 4:] = 2
    data = jpeg_bytes(natural_image(32, 32), qtables=[luma.ravel().tolist(), cb.ravel().tolist(),
                                                       cr.ravel().tolist()])
    with Image.open(io.BytesIO(data)) as img:
        assert [layer[3] for layer in img.layer] == [0, 1, 2]  # the file really gives Cr its own table
    got = jpeg.read_quantization(data)
    np.testing.assert_array_equal(got.chroma, np.maximum(cb, cr))


def test_fold_luma_gives_back_a_jpeg_table_and_averages_other_maps():
    rng = np.random.default_rng(0)
    table = rng.integers(1, 200, (8, 8)).astype(np.int32)
    np.testing.assert_array_equal(qz.fold_luma(qz.qmap(table, None, 45, 61)[..., 0]), table)  # partial blocks cut
    four = np.tile(np.array([[2.0, 4.0], [6.0, 8.0]]).repeat(2, 0).repeat(2, 1), (4, 4)) * qz.QMAP_SCALE  # 4x4 period
    halves = np.concatenate([four, 3 * four], axis=1)  # [16, 32]: two segments
    # each 8x8 position: two blocks of each half, so twice the left half's steps
    np.testing.assert_array_equal(qz.fold_luma(halves), np.tile(np.array([[4, 8], [12, 16]]).repeat(2, 0).repeat(2, 1),
                                                                (2, 2)))
    assert qz.fold_luma(np.full((8, 8), 1e-6)).min() == 1  # at least one step
    with pytest.raises(ValueError, match="smaller than one 8x8 block"):
        qz.fold_luma(np.ones((7, 30)))
