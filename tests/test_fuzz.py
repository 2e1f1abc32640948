"""A seeded, time-bounded fuzz of every reader and of `decode` (slow tier): mutated JPEG, WebP, AVIF, HEIC
and PNG files, and mutated H.264, HEVC, VP9 and AV1 streams and clip files, give ValueErrors and nothing else,
each call within a few seconds, in bounded memory."""

import importlib.util
import json
import pathlib
import resource
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
WORKER = pathlib.Path(__file__).with_name("_fuzz_worker.py")
ADDRESS_SPACE = 4 * 2**30  # the worker's whole address space: a reader that allocated by a field's claim fails


def _limited():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize("seed", [0, 1])
def test_mutated_files_of_every_codec_raise_value_errors_only_quickly_and_in_bounded_memory(seed):
    proc = subprocess.run([sys.executable, str(WORKER), str(seed), "1000"], capture_output=True, text=True,
                          timeout=300, preexec_fn=_limited)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["calls"] >= 8000 and result["escaped"] == []
    if importlib.util.find_spec("av") is not None:  # (the clips: 750 streams through our readers, 160 clip files)
        assert result["clip_calls"] == 910, result
    assert result["slowest_s"] < 5.0, result  # no call near a hang: the slowest measured here took 0.25 s
