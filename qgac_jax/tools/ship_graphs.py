"""Builds the ONNX graphs that ship in the package, so that restoring on a CPU neither converts nor needs JAX.

    python -m qgac_jax.tools.ship_graphs

Run after any shipped export changes (a retrained model, a new int8 recipe or
calibration set): each graph is named as the ONNX cache names it, by the
digest of the export it was built from (and the int8 recipe's), so a graph
whose export changed no longer matches and tests/test_ship_graphs.py
fails until this is run again. Needs the full install with the extra `onnx`
(JAX and the converter). Which exports get graphs: `shipped.with_graphs`.
Replaces qgac_jax/pretrained/graphs/ whole; takes a few minutes on a CPU.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from qgac_jax.graphs import int8_graph, onnx_graph
from qgac_jax.models import shipped


def build(out_dir) -> list:
    """Converts and quantizes every graph of `shipped.with_graphs()` into `out_dir` (none taken from GRAPHS, which
    is hidden meanwhile); the files written, by name."""
    graphs = shipped.GRAPHS
    hidden = graphs.with_name(graphs.name + ".old")
    if graphs.exists():
        graphs.rename(hidden)
    previous = os.environ.get("QGAC_ONNX_CACHE")
    os.environ["QGAC_ONNX_CACHE"] = str(out_dir)
    try:
        made = [onnx_graph.cached(path, log=print) for path in shipped.with_graphs()["float32"]]
        made += [int8_graph.cached(path, log=print) for path in shipped.with_graphs()["int8"]]
    finally:
        if previous is None:
            del os.environ["QGAC_ONNX_CACHE"]
        else:
            os.environ["QGAC_ONNX_CACHE"] = previous
        if hidden.exists():
            hidden.rename(graphs)
    return made


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="qgac-graphs-") as tmp:
        made = build(tmp)
        fresh = shipped.GRAPHS.with_name(shipped.GRAPHS.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        for path in made:
            shutil.copyfile(path, fresh / path.name)
        shutil.rmtree(shipped.GRAPHS, ignore_errors=True)
        fresh.rename(shipped.GRAPHS)
    size = sum(p.stat().st_size for p in shipped.GRAPHS.iterdir()) / 2**20
    print(f"{len(made)} graphs, {size:.1f} MiB, in {shipped.GRAPHS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
