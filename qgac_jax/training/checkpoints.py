"""Orbax checkpoints of the train state: the latest few, and the best by validation PSNR.

Layout of a workdir:
  checkpoints/<step>/   latest K train states (+ 'meta': step, config)   async
  best/<step>/          the state with the best validation PSNR
  export/               EMA generator params + model config (`models.exports`): what Restorer loads
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

import jax
import orbax.checkpoint as ocp

from qgac_jax.models.exports import orbax_path as _path

log = logging.getLogger(__name__)


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
