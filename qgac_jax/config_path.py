"""Makes `--config=configs/x.py` files importable as the `configs` package (they import each other)."""

from __future__ import annotations

import os
import sys
from typing import Sequence


def config_root_on_path(argv: Sequence[str]) -> None:
    """Puts the folder above the config file on sys.path, so configs can `from configs import base`."""
    for i, arg in enumerate(argv):
        path = arg.split("=", 1)[1] if arg.startswith("--config=") else (
            argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
        if path:
            path = path.split(":", 1)[0]  # configs/cpu.py:grey -> configs/cpu.py
            sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(path))))
            return
