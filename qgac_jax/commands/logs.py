"""What the command lines print: our own lines, not third-party chatter.

Libraries we call log things that say nothing to someone restoring a photo
or training a model (jax2onnx's and onnx_ir's conversion notes, Orbax's and
absl's INFO lines, TensorFlow's start-up banner). `quiet_third_party` keeps
their errors and drops the rest; our own messages go through the
`qgac_jax` loggers and `print`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from typing import Callable, NoReturn

LOG_EVERY_S = 5.0  # piped to a log, a long job's progress line this often


class ProgressLines:
    """A long job's progress where there is no terminal for a bar (a photo's tiles, a clip's frames): `update(n)`
    as tqdm's, and a line every LOG_EVERY_S seconds, 'NAME: done/total UNIT, N s, about M s left' (a total of 0 is
    unknown: no estimate)."""

    def __init__(self, name, total: int, unit: str):
        self.name, self.total, self.unit, self.done = name, total, unit, 0
        self.start = self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last < LOG_EVERY_S or (self.total and self.done >= self.total):
            return
        self.last, elapsed = now, now - self.start
        left = f", about {elapsed / self.done * (self.total - self.done):.0f} s left" if self.total else ""
        print(f"{self.name}: {self.done}/{self.total or '?'} {self.unit}, {elapsed:.0f} s{left}", flush=True)

    def close(self) -> None:
        pass


def prog(module: str) -> str:
    """The name a command's usage and errors give it: the console script it was started as (qgac-restore),
    else `python -m MODULE`."""
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return script if script.startswith("qgac-") else f"python -m {module}"


NOISY = (
    "onnx_ir",
    "onnxscript",
    "jax2onnx",
    "onnx",
    "absl",
    "orbax",
    "tensorflow",
    "tensorstore",
    "jax._src.xla_bridge",
)


def quiet_third_party() -> None:
    """Third-party loggers at ERROR; TensorFlow's C++ log at errors only; known harmless warnings hidden."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*[Pp]latform.*TPU.*")


def run_command(run: Callable[[], int]) -> NoReturn:
    """A command line's `main`: third parties quiet, `run()`'s status as the exit status, and Ctrl-C one line
    and 130 (writes are atomic, so an interrupted command leaves no half-written file)."""
    quiet_third_party()
    try:
        status = run()
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        status = 130
    sys.exit(status)
