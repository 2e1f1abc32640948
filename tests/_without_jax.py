"""Runs a module as `python -m` would with JAX hidden, as in the restore-only install (which has none):

    python tests/_without_jax.py qgac_jax.restore photo.jpg --output out/
    python tests/_without_jax.py script.py ARGS    (a script, as `python script.py` would)

Any import of jax, jaxlib, flax, optax, orbax or jax2onnx fails as a missing package does, and at exit the
modules that were imported are checked: a line 'without JAX: ok' on stdout, or exit status 3 naming them.
"""

import importlib.abc
import runpy
import sys

HIDDEN = ("jax", "jaxlib", "flax", "optax", "orbax", "jax2onnx", "tensorflow")


class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def main() -> None:
    sys.meta_path.insert(0, Hide())
    module, sys.argv = sys.argv[1], [sys.argv[1]] + sys.argv[2:]
    status = 0
    try:
        if module.endswith(".py"):
            runpy.run_path(module, run_name="__main__")
        else:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        status = done.code or 0
    imported = sorted({name.split(".")[0] for name in sys.modules} & set(HIDDEN))
    if imported:
        print(f"without JAX: imported {', '.join(imported)}", file=sys.stderr)
        sys.exit(3)
    print("without JAX: ok")
    sys.exit(status)


if __name__ == "__main__":
    main()
