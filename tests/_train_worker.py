"""Runs training pieces in a fresh process (device count and distributed set-up are per process).

    python tests/_train_worker.py step OUT.npz              one sharded train step on all local devices
    python tests/_train_worker.py train WORKDIR OUT.npz [config.key=value ...]   smoke training run; OUT holds the
                                                                       parameters this process ends with
    python tests/_train_worker.py hosts_in_one OUT.npz STEPS     the batches of two hosts, concatenated, on
                                                                 this process's devices: the reference run
"""

import os
import sys
import time

if os.environ.get("QGAC_TEST_NO_TENSORFLOW"):  # as on a machine without TensorFlow: any import of it fails
    sys.modules["tensorflow"] = None

import jax  # noqa: E402
import numpy as np  # noqa: E402

from qgac_jax import data  # noqa: E402
from qgac_jax.data import on_device  # noqa: E402
from qgac_jax.training import config as config_lib  # noqa: E402
from qgac_jax.training import loop as train_loop  # noqa: E402
from qgac_jax.training import restoration, sections, sharding  # noqa: E402
from qgac_jax.training import step as train_step  # noqa: E402

SMOKE = os.path.join(config_lib.ROOT, "configs", "smoke.py")  # loaded by path, as `train` loads it


def flat(tree):
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(tree)}


def one_step(out):
    config = config_lib.load(SMOKE)
    parts = train_step.make_parts(sections.training(config))
    mesh = sharding.make_mesh()
    repl = sharding.param_sharding(mesh)
    state = jax.device_put(train_step.init_state(parts, jax.random.key(0)), repl)
    data_config = data.DataConfig.from_config(config.data)
    host = next(data.train_batches(data_config, process_index=0, process_count=1, compact=True))
    host = {k: host[k] for k in restoration.STEP_KEYS}
    batch = on_device.make_prepare(data_config)(sharding.global_batch(host, mesh))
    step = train_step.jit_step(parts, False, mesh, donate=False)
    state, metrics = step(state, batch, {})
    assert batch["target"].sharding.num_devices == jax.device_count()
    scalars = {f"metric/{k}": np.asarray(v) for k, v in metrics.items()}
    np.savez(out, devices=jax.device_count(), **scalars, **flat(state.g_params))


def smoke_config(overrides):
    """The smoke config ($SMOKE_ARG) with `config.key=value` overrides, as `train` runs it."""
    arg = os.environ.get("SMOKE_ARG", "")
    config = config_lib.load(SMOKE + (f":{arg}" if arg else ""))
    for item in overrides:
        key, value = item.split("=", 1)
        config_lib.override(config, key, value)
    return config


def run_training(workdir, out, overrides):
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("qgac_jax").setLevel(logging.INFO)  # step lines, which tests wait for
    config = smoke_config(overrides)
    delay = float(os.environ.get("QGAC_TEST_STEP_DELAY", "0"))

    def slow(data_config, start_step):  # the real stream, slowed so a test can signal the run mid-way
        for batch in train_loop.default_batches(data_config, start_step):
            time.sleep(delay)
            yield batch

    sharding.initialize_distributed()
    state, _ = restoration.train_and_evaluate(config, workdir, batches=slow if delay else train_loop.default_batches)
    if out != "-":  # what this process holds in memory (replicated: its own shard is the whole value)
        local = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), (state.g_params, state.ema_params))
        np.savez(out, process=jax.process_index(), devices=jax.device_count(), **flat({"g": local[0], "ema": local[1]}))


def hosts_in_one(out, steps):
    """The global batches two hosts would make, built here side by side and stepped on this process's devices."""
    config = config_lib.load(SMOKE)
    config.train.steps = steps  # the learning-rate schedule spans the run
    data_config = data.DataConfig.from_config(config.data)
    parts = train_step.make_parts(sections.training(config))
    mesh = sharding.make_mesh()
    state = jax.device_put(train_step.init_state(parts, jax.random.key(config.train.seed)),
                           sharding.param_sharding(mesh))
    hosts = [data.train_batches(data_config, process_index=p, process_count=2, compact=True) for p in range(2)]
    prepare = on_device.make_prepare(data_config)
    step = train_step.jit_step(parts, False, mesh)
    for _ in range(steps):
        local = [next(h) for h in hosts]
        batch = {k: np.concatenate([b[k] for b in local]) for k in restoration.STEP_KEYS}
        state, _ = step(state, prepare(sharding.global_batch(batch, mesh)), {})
    np.savez(out, devices=jax.device_count(), **flat({"g": jax.device_get(state.g_params),
                                                      "ema": jax.device_get(state.ema_params)}))


if __name__ == "__main__":
    if sys.argv[1] == "step":
        one_step(sys.argv[2])
    elif sys.argv[1] == "hosts_in_one":
        hosts_in_one(sys.argv[2], int(sys.argv[3]))
    else:
        run_training(sys.argv[2], sys.argv[3], sys.argv[4:])
