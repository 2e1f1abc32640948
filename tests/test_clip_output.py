"""files/clip_output.py (through restoring/video.py): a restored clip keeps its frames' count and timestamps, its
colour tags and rotation, its audio and subtitles, and is written whole or not at all."""

import pytest

from _clips import av, make_clip, psnr, with_subtitles
from qgac_jax.files import clip_output, clips
from qgac_jax.restoring import video


class Identity:
    """A restorer that changes nothing: what comes out is what the writer made of the decoded frames."""

    def restore_compressed(self, pixels, quantization, mode):
        return pixels


def _streams(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        out = {"video_pts": [f.pts for f in c.decode(v)], "time_base": v.time_base}
    with av.open(str(path)) as c:
        out["other_packets"] = {s.type: sum(1 for p in c.demux(s) if p.size) for s in c.streams
                                if s.type in ("audio", "subtitle")}
    return out


def _frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_timestamps_colour_rotation_audio_and_subtitles_come_back(tmp_path, suffix):
    plain = tmp_path / f"plain{suffix}"
    make_clip(plain, "h264", frames=16, crf=28, audio=True, vfr=True, rotation=90, bt709=True)
    src = tmp_path / f"src{suffix}"
    with_subtitles(plain, src)
    dest = tmp_path / "out" / f"restored{suffix}"
    report = video.restore_clip(Identity(), src, dest)
    assert report.frames == 16 and report.lost == [] and dest.is_file()
    before, after = clips.probe(src), clips.probe(dest)
    assert (after.colorspace, after.color_range, after.color_primaries, after.color_trc) == (1, 1, 1, 1)
    assert after.rotation == before.rotation == (90 if suffix == ".mp4" else 0)  # (Matroska keeps no rotation)
    assert (after.width, after.height) == (128, 96)
    source, restored = _streams(src), _streams(dest)
    assert source["other_packets"] == restored["other_packets"] and set(restored["other_packets"]) == {
        "audio", "subtitle"}
    seconds = [float(p * source["time_base"]) for p in source["video_pts"]]
    assert [float(p * restored["time_base"]) for p in restored["video_pts"]] == pytest.approx(seconds, abs=1e-3)
    assert len(set(round(b - a, 3) for a, b in zip(seconds, seconds[1:]))) > 1  # still a variable rate
    # the colours survive decoding to RGB and encoding back with the clip's own matrix and range (BT.709, limited)
    assert min(psnr(a, b) for a, b in zip(_frames(src), _frames(dest))) > 38


@pytest.mark.parametrize("codec", ["x265", "av1", "ffv1"])
def test_each_video_codec_writes_a_clip_that_decodes(tmp_path, codec):
    src = tmp_path / "src.mp4"
    make_clip(src, "h264", frames=6)
    dest = tmp_path / ("out" + clip_output.output_suffix(".mp4", codec))
    video.restore_clip(Identity(), src, dest, codec=codec)
    frames, originals = _frames(dest), _frames(src)
    assert len(frames) == 6 and min(psnr(a, b) for a, b in zip(originals, frames)) > (44 if codec == "ffv1" else 36)
    assert dest.suffix == (".mkv" if codec == "ffv1" else ".mp4")


def test_ctrl_c_or_a_failure_mid_clip_leaves_no_file(tmp_path):
    src = tmp_path / "src.mp4"
    make_clip(src, "h264", frames=12)

    def interrupt(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        video.restore_clip(Identity(), src, tmp_path / "out" / "a.mp4", progress=interrupt)

    class Broken(Identity):
        def restore_compressed(self, pixels, quantization, mode):
            raise MemoryError

    with pytest.raises(MemoryError):
        video.restore_clip(Broken(), src, tmp_path / "out" / "b.mp4")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_the_encoders_keep_their_chatter_off_the_users_terminal(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("SVT_LOG", raising=False)  # (as in a fresh shell: SVT-AV1 prints a banner at every open)
    src = tmp_path / "src.mp4"
    make_clip(src, "h264", frames=3)
    capfd.readouterr()
    for codec in ("av1", "x265"):
        video.restore_clip(Identity(), src, tmp_path / f"out_{codec}.mkv", codec=codec)
    err = capfd.readouterr().err
    assert "Svt[" not in err and "x265 [info]" not in err, err[:500]
