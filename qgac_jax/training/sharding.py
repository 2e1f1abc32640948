"""Device mesh, shardings and multi-host start-up.

One mesh axis, 'data': batches are split along it, parameters replicated
(`param_sharding` is the one place to change that, e.g. for FSDP).
"""

from __future__ import annotations

import logging
import os
from typing import Dict, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

log = logging.getLogger(__name__)


def initialize_distributed(coordinator: Optional[str] = None, num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> None:
    """Starts jax.distributed when there are several processes.

    On TPU VMs and SLURM/GPU clusters jax detects everything itself (call with
    no arguments there); explicit values, or the env variables
    QGAC_COORDINATOR / QGAC_NUM_PROCESSES / QGAC_PROCESS_ID, serve CPU hosts
    and tests. On CPU the gloo collectives make cross-process reductions work.
    """
    coordinator = coordinator or os.environ.get("QGAC_COORDINATOR")
    num_processes = num_processes or int(os.environ.get("QGAC_NUM_PROCESSES", "0") or 0) or None
    if process_id is None and os.environ.get("QGAC_PROCESS_ID"):
        process_id = int(os.environ["QGAC_PROCESS_ID"])
    auto = any(k in os.environ for k in ("TPU_WORKER_HOSTNAMES", "SLURM_JOB_ID", "MEGASCALE_COORDINATOR_ADDRESS"))
    if coordinator is None and not auto:
        return  # a single process
    if jax.config.jax_platforms in (None, "", "cpu") or coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    else:
        jax.distributed.initialize()
    log.info("process %d of %d, %d local / %d global devices", jax.process_index(), jax.process_count(),
             jax.local_device_count(), jax.device_count())


def make_mesh() -> Mesh:
    return Mesh(np.asarray(jax.devices()), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def param_sharding(mesh: Mesh) -> NamedSharding:
    """Replicated parameters. Change here to shard them (all state leaves use it)."""
    return NamedSharding(mesh, P())


def global_batch(local: Dict[str, np.ndarray], mesh: Mesh) -> Dict[str, jax.Array]:
    """Assembles each host's local batch into global arrays sharded along 'data'."""
    sharding = batch_sharding(mesh)
    out = {}
    for k, v in local.items():
        if v.dtype.kind in "fiub":
            out[k] = jax.make_array_from_process_local_data(sharding, v)
    return out


def check_batch(global_size: int, mesh: Mesh) -> None:
    devices = mesh.devices.size
    if global_size % devices:
        raise ValueError(f"global batch size {global_size} is not divisible by the {devices} devices")
