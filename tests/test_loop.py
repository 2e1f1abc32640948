"""The one training loop: its schedule, and resume with the batch stream of the step it stopped at."""

import importlib
import itertools

import pytest

from qgac_jax import data
from qgac_jax.training import restoration
from qgac_jax.training import loop as train_loop


def test_itstime_is_every_n_steps_and_always_at_the_end():
    assert [d for d in range(1, 11) if train_loop.itstime(d, 4, 10)] == [4, 8, 10]


@pytest.mark.parametrize("field", ["steps", "log_every", "eval_every", "checkpoint_every"])
def test_schedule_refuses_periods_below_one(field):
    values = dict(steps=10, log_every=1, eval_every=1, checkpoint_every=1) | {field: 0}
    with pytest.raises(ValueError, match=f"train.{field} must be at least 1"):
        train_loop.Schedule(**values)


def _smoke(steps):
    config = importlib.import_module("configs.smoke").get_config()
    config.train.steps, config.train.checkpoint_every, config.train.eval_every = steps, 2, 1000
    return config


@pytest.mark.slow
def test_the_batch_source_is_injected_and_resumed_at_the_step_it_stopped(tmp_path):
    asked = []

    def batches(data_config, start_step):
        asked.append(start_step)
        real = data.train_batches(data_config, start_step=start_step, compact=True)
        return itertools.islice(real, 10)

    restoration.train_and_evaluate(_smoke(2), str(tmp_path), batches=batches)
    state, _ = restoration.train_and_evaluate(_smoke(4), str(tmp_path), batches=batches)
    assert asked == [0, 2] and int(state.step) == 4
