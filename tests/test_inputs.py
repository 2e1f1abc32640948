"""A restore's inputs: which files, once each, never from the output tree; outputs that keep distinct names."""

from qgac_jax.files import inputs
from conftest import jpeg_bytes, natural_image


def _tree(root, names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(jpeg_bytes(natural_image(8, 8), quality=50))


def test_walking_skips_an_output_folder_inside_the_input_and_earlier_outputs_beside_it(tmp_path):
    _tree(tmp_path, ["a.jpg", "sub/b.jpg", "restored/a.png", "restored/x.jpg", "c.png"])
    found, errors = inputs.collect_inputs([str(tmp_path)], tmp_path / "restored")
    assert errors == [] and sorted(j.rel.as_posix() for j in found) == ["a.png", "c.png", "sub/b.png"]
    same, _ = inputs.collect_inputs([str(tmp_path)], tmp_path)  # in and out the same: PNGs are outputs
    assert sorted(j.src.name for j in same) == ["a.jpg", "b.jpg", "x.jpg"]


def test_each_file_once_and_named_files_are_not_walked(tmp_path):
    _tree(tmp_path, ["a.jpg"])
    found, _ = inputs.collect_inputs([str(tmp_path / "a.jpg"), str(tmp_path), str(tmp_path / "*.jpg")])
    assert len(found) == 1 and not found[0].walked


def test_inputs_that_would_share_an_output_keep_their_whole_names(tmp_path):
    _tree(tmp_path, ["a.jpg", "a.webp", "b.jpg", "sub/A.jpeg", "sub/a.JPG"])
    found, errors = inputs.collect_inputs([str(tmp_path)])
    assert errors == [] and sorted(j.rel.as_posix() for j in found) == [
        "a.jpg.png", "a.webp.png", "b.png", "sub/A.jpeg.png", "sub/a.JPG.png"]  # (A and a: one name on macOS)
    named, _ = inputs.collect_inputs([str(tmp_path / "a.jpg"), str(tmp_path / "sub" / "a.JPG")])
    assert sorted(j.rel.as_posix() for j in named) == ["a.JPG.png", "a.jpg.png"]


def test_uploads_by_name_alone_get_restores_names_and_a_number_for_the_same_name_twice():
    assert inputs.output_names(["a.jpg", "a.webp", "b.jpg", "a.jpg", "A.JPG", "c.heic"]) == [
        "a.jpg.png", "a.webp.png", "b.png", "a.jpg (2).png", "A.JPG (3).png", "c.png"]
    assert inputs.output_names(["v.mp4", "v.webm", "v.mp4", "v.jpg"]) == [  # clips keep a container that holds H.264
        "v.mp4.mp4", "v.mkv", "v.mp4 (2).mp4", "v.png"]
