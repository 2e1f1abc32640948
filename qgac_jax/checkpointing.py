"""Orbax checkpoints of the train state, and the params-only export for inference.

Layout of a workdir:
  checkpoints/<step>/   latest K train states (+ 'meta': step, config)   async
  best/<step>/          the state with the best validation PSNR
  export/               EMA generator params + model config: what Restorer loads
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Tuple

import jax
import orbax.checkpoint as ocp
from etils import epath

log = logging.getLogger(__name__)


def _path(path) -> epath.Path:
    """gs:// paths stay as they are; local ones become absolute (Orbax needs that)."""
    path = os.fspath(path)
    return epath.Path(path if "://" in path else os.path.abspath(path))


def abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class Checkpointer:
    """Keeps the latest `keep` train states, plus the best one by validation PSNR."""

    def __init__(self, workdir, keep: int = 3, asynchronous: bool = True):
        root = _path(workdir)
        self.latest = ocp.CheckpointManager(
            root / "checkpoints", item_names=("state", "meta"),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=asynchronous))
        self.best = ocp.CheckpointManager(
            root / "best", item_names=("state", "meta"),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1, create=True, best_fn=lambda m: m["val_psnr"], best_mode="max",
                enable_async_checkpointing=asynchronous,
                # Both managers may save the same step; distinct barrier names keep hosts from mixing them up.
                multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix="best")))

    @staticmethod
    def _args(state, meta):
        return ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))

    def save(self, step: int, state, meta: Dict[str, Any], force: bool = False) -> None:
        self.latest.save(step, args=self._args(state, meta), force=force)

    def save_best(self, step: int, state, meta: Dict[str, Any], val_psnr: float) -> None:
        self.best.save(step, args=self._args(state, meta), metrics={"val_psnr": float(val_psnr)}, force=True)

    def latest_step(self) -> Optional[int]:
        return self.latest.latest_step()

    def restore_latest(self, like) -> Optional[Tuple[Any, Dict[str, Any]]]:
        """(state, meta) of the newest checkpoint, shaped and sharded like `like`; None if there is none."""
        step = self.latest.latest_step()
        if step is None:
            return None
        out = self.latest.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract(like)), meta=ocp.args.JsonRestore()))
        return out.state, out.meta

    def wait(self) -> None:
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def export_params(path, params, model_config: Dict[str, Any]) -> None:
    """Writes EMA params + model config to `path`, replacing an older export atomically."""
    path = _path(path)
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


def read_model_config(path) -> Dict[str, Any]:
    path = _path(path)
    if not (path / "model").exists():
        raise ValueError(f"{path} is not a qgac_jax export (no 'model' item); export with checkpointing.export_params")
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckpt:
        return dict(ckpt.restore(path, args=ocp.args.Composite(model=ocp.args.JsonRestore())).model)


def export_dir(path) -> str:
    """A training workdir's export/ folder; any other path as it is."""
    path = os.fspath(path)
    return os.path.join(path, "export") if os.path.isdir(os.path.join(path, "export")) else path


def load_restoration_export(path):
    """(model, params, model_config) of a restoration model's export folder or training workdir.

    Raises ValueError for a quality estimator's export, which has no restoration model.
    """
    path = export_dir(path)
    model, params, config = load_export(path)
    if config.get("kind") == "estimator":
        raise ValueError(f"{path} holds a quality estimator, not a restoration model")
    return model, params, config


def load_export(path):
    """(model, params, model_config) of an export, built from the stored config."""
    from qgac_jax.models import create_model_from_config, dummy_inputs

    config = read_model_config(path)
    model = create_model_from_config(config)
    like = jax.eval_shape(lambda: model.init(jax.random.key(0), *dummy_inputs(model, 32, 32))["params"])
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckpt:
        params = ckpt.restore(_path(path), args=ocp.args.Composite(params=ocp.args.StandardRestore(like))).params
    return model, params, config

