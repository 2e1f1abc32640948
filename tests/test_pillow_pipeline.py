"""The TensorFlow-free pipeline: no TensorFlow imported, workers that die with their parent, clear errors."""

import subprocess
import pathlib
import sys
import time

import pytest

from qgac_jax import data as ip
from test_data import _config, _take  # noqa: F401


@pytest.mark.slow
def test_pillow_pipeline_needs_no_tensorflow(folder):
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"  # any import of TensorFlow now fails
        "from qgac_jax import data as ip\n"
        "if __name__ == '__main__':\n"
        f"    c = ip.DataConfig(sources=('folder:{folder}',), patch_size=32, batch_size=4, pipeline='pillow',"
        " workers=2)\n"
        "    b = next(ip.train_batches(c, process_index=0, process_count=1))\n"
        "    print(b['compressed'].shape, b['qmap'].shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "(4, 32, 32, 3) (4, 32, 32, 2)" in out.stdout


@pytest.mark.slow
def test_pillow_workers_exit_when_their_parent_is_killed(folder):
    code = (
        "from qgac_jax import data as ip\n"
        "if __name__ == '__main__':\n"
        f"    c = ip.DataConfig(sources=('folder:{folder}',), patch_size=32, batch_size=4, pipeline='pillow',"
        " workers=2)\n"
        "    it = ip.train_batches(c, process_index=0, process_count=1); next(it)\n"
        "    print('ready', flush=True)\n"
        "    import time; time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        # Two pool workers (the spawn start method may add a resource tracker).
        assert len(workers) >= 2
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 30
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in workers if pathlib.Path(f"/proc/{pid}").exists()
                 and "zombie" not in pathlib.Path(f"/proc/{pid}/status").read_text().lower()]
    assert not alive, f"worker processes {alive} outlived their killed parent"


def test_tfds_source_without_tensorflow_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as on a machine without it
    with pytest.raises(ValueError, match="needs tensorflow-datasets and TensorFlow.*folder:"):
        ip.check_source("tfds:div2k/bicubic_x2:train")


def test_tf_data_pipeline_without_tensorflow_names_the_pillow_pipeline(monkeypatch, folder):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ValueError, match="data.pipeline=pillow"):
        next(ip.train_batches(_config(sources=(f"folder:{folder}",)), process_index=0, process_count=1))
