"""Files replaced whole or not at all: PNGs, ONNX graphs and their hashes, evaluation JSON.

Each is written to a temporary file in its own folder and renamed over its
path, so a crash, a full disk or Ctrl-C never leaves half a file where a
whole one is expected. Temporary names are `.qgac-<pid>-<random>.tmp`, the
same short length whatever the file's name (a 250-byte name still fits), and
carry the writer's process id, so `remove_leftovers` can tell the files of a
killed run from those of a run still writing.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

TEMP_PREFIX = ".qgac-"


def write_bytes(path, data: bytes) -> None:
    """`data` at `path` (its folder created), through a temporary file and a rename; usual permissions."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; files get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_leftovers(folder: pathlib.Path) -> int:
    """Deletes temporary files under `folder` that a killed run left (its process is gone); how many."""
    removed = 0
    for tmp in folder.rglob(f"{TEMP_PREFIX}*.tmp"):
        pid = tmp.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
