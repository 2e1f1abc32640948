"""Train the restoration model: a config file, a workdir, overrides.

    python -m qgac_jax.train --config=configs/base.py --workdir=DIR [--config.train.steps=...]

Restarting with the same workdir resumes from the latest checkpoint with the
same data stream. SIGTERM (TPU preemption) saves and exits 0. A non-finite
loss stops the run with a message and leaves the last good checkpoint.
Several processes: set up by jax on TPU VMs / SLURM, or by
QGAC_COORDINATOR, QGAC_NUM_PROCESSES, QGAC_PROCESS_ID (see training/sharding.py).
"""

from __future__ import annotations


def main(argv=None) -> None:
    """`python -m qgac_jax.train` and `qgac-train`."""
    from qgac_jax.commands import logs
    from qgac_jax.training import entry

    entry.require_jax(logs.prog("qgac_jax.train"))
    from qgac_jax.training import restoration

    entry.main(restoration.train_and_evaluate, logs.prog("qgac_jax.train"), __doc__, argv)


if __name__ == "__main__":
    main()
