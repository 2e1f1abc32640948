"""A trained model on disk: its parameters and the config that rebuilds it (Orbax), written whole or not at all.

Training writes one at each evaluation (the EMA parameters); restore, the
ONNX export and the quality estimate read them. The config names what the
export holds ('kind': a restoration model, or 'estimator'), so nothing else
has to be known to load one. JAX and Orbax load when an export is read or
written: where a file is and what it hashes to (`export_dir`, `digest`) is
all that restoring from a shipped ONNX graph asks, with no JAX installed.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Any, Dict



def orbax_path(path):
    """gs:// paths stay as they are; local ones become absolute (Orbax needs that): an epath.Path."""
    from etils import epath

    path = os.fspath(path)
    return epath.Path(path if "://" in path else os.path.abspath(path))


def export_params(path, params, model_config: Dict[str, Any]) -> None:
    """Writes EMA params + model config to `path`, replacing an older export atomically."""
    import jax
    import orbax.checkpoint as ocp

    path = orbax_path(path)
    tmp = path.parent / (path.name + ".tmp")
    if tmp.exists():
        tmp.rmtree()
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckpt:
        ckpt.save(tmp, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                               model=ocp.args.JsonSave(dict(model_config))))
    if jax.process_index() == 0:
        old = path.parent / (path.name + ".old")
        if path.exists():
            if old.exists():
                old.rmtree()
            path.rename(old)
        tmp.rename(path)
        if old.exists():
            old.rmtree()
    if jax.process_count() > 1:  # no host reads the export before process 0 has moved it in place
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"qgac_export:{path}")


def digest(path) -> str:
    """A hash of an export folder's files (names and bytes): what a graph or blend made of it is cached by, so a
    retrained export gets a new one."""
    root = pathlib.Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:20]


def read_model_config(path) -> Dict[str, Any]:
    import orbax.checkpoint as ocp

    path = orbax_path(path)
    if not (path / "model").exists():
        raise ValueError(f"{path} is not a qgac_jax export (no 'model' item); export with models.exports.export_params")
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckpt:
        return dict(ckpt.restore(path, args=ocp.args.Composite(model=ocp.args.JsonRestore())).model)


def export_dir(path) -> str:
    """A training workdir's export/ folder; any other path as it is."""
    path = os.fspath(path)
    return os.path.join(path, "export") if os.path.isdir(os.path.join(path, "export")) else path


def load_restoration_export(path):
    """(model, params, model_config) of a restoration model's export folder or training workdir; the float
    network of a model fine-tuned for int8 (its params hold its ranges, models/int8.py).

    Raises ValueError for a quality estimator's export, which has no restoration model.
    """
    path = export_dir(path)
    model, params, config = load_export(path)
    if config.get("kind") == "estimator":
        raise ValueError(f"{path} holds a quality estimator, not a restoration model")
    # A model fine-tuned for int8 restores as a float network too; its int8 graph reads the ranges in `params`.
    return (model.clone(int8="") if model.int8 else model), params, config


def load_export(path):
    """(model, params, model_config) of an export, built from the stored config."""
    import jax
    import orbax.checkpoint as ocp

    from qgac_jax.models import create_model_from_config, dummy_inputs

    config = read_model_config(path)
    model = create_model_from_config(config)
    like = jax.eval_shape(lambda: model.init(jax.random.key(0), *dummy_inputs(model, 32, 32))["params"])
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckpt:
        try:
            params = ckpt.restore(orbax_path(path),
                                  args=ocp.args.Composite(params=ocp.args.StandardRestore(like))).params
        except ValueError as err:
            params = _without_stale_ranges(ckpt, orbax_path(path), like, err)
    return model, params, config


def _without_stale_ranges(ckpt, path, like, err: ValueError):
    """The params of an int8 fine-tune exported before its network kept more convolutions float: the ranges of
    tensors it no longer quantizes are dropped. Any other difference from `like` raises `err`."""
    import flax
    import orbax.checkpoint as ocp

    from qgac_jax.models import int8

    stored = flax.traverse_util.flatten_dict(
        ckpt.restore(path, args=ocp.args.Composite(params=ocp.args.StandardRestore())).params)
    want = flax.traverse_util.flatten_dict(flax.core.unfreeze(like))
    extra = set(stored) - set(want)
    if set(want) - set(stored) or not extra or any(k[-1] != int8.RANGE for k in extra):
        raise err
    for k, v in want.items():
        if tuple(stored[k].shape) != tuple(v.shape):
            raise err
    return flax.traverse_util.unflatten_dict({k: stored[k] for k in want})

