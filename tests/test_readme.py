"""Every command and Python snippet in the README and docs/ is run here (shortened), or named with what runs it.

A command added to the README or a docs page without a rule below fails
`test_every_readme_command_has_a_rule`, so the documentation cannot drift from what the code accepts.
Long jobs run with overrides that keep their
path (the config, the flags, the data) and cut their length (steps, images, seconds).
"""

import pathlib
import re
import subprocess
import sys

import pytest

from qgac_jax.evaluation.protocol import Case
from _documented import (README, ROOT, _argv, _onnx_for, _run, _sandbox, _shared, _shared_sample, covered_by,
                         python_snippets, readme_commands, train_estimator_short, train_preset, train_short, trained_in)
from conftest import SHARED_DATA
# ----------------------------------------------------------------------------- how each command is exercised

def by_ci(command, tmp_path):
    """The two set-up commands and CI itself: `.ci/run` runs the README's marked lines verbatim."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "setup-command" in ci and "test-command" in ci
    marked = [re.search(rf"<!-- {marker} -->\n```\n(.*)\n```", README).group(1)
              for marker in ("setup-command", "test-command", "restore-install")]
    assert "restore-install" in ci
    assert command in marked or command == "bash .ci/run" or (command == "bash .ci/restore_install.sh"
                                                             and "bash .ci/restore_install.sh" in ci)


def restore_install_named(command, tmp_path):
    """The restore install as docs/development.md names it, without the venv's creation: the README's marked line
    ends with it, and CI runs that line (`by_ci`)."""
    line = re.search(r"<!-- restore-install -->\n```\n(.*)\n```", README).group(1)
    assert line.endswith("&& " + command), line
    by_ci("bash .ci/restore_install.sh", tmp_path)


def fast_tier(command, tmp_path):
    """The fast tier's command, collected (running it here would run the suite inside itself): it selects
    tests, none of them marked slow, and the slow ones are left for the full command."""
    argv = _argv(command) + ["--collect-only"]
    argv = [a for a in argv if a not in ("-n", "2")]
    proc = _run(argv, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    selected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert len(selected) > 150 and not any("test_readme_command" in line for line in selected)


def train_offline_div2k(command, tmp_path):
    """DIV2K through tfds: offline it must stop at once, naming the dataset (online it trains)."""
    argv = [a if not a.startswith("--workdir=") else f"--workdir={tmp_path / 'w'}" for a in _argv(command)]
    proc = _run(argv, timeout=120)
    if proc.returncode == 0:
        pytest.skip("this machine reached DIV2K; the full run is a TPU job")
    assert "div2k" in proc.stderr.lower() and "Traceback" not in proc.stderr, proc.stderr[-3000:]


def train_shipped_dry_run(command, tmp_path):
    proc = _run(_argv(command) + ["--dry-run"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("timeout -s TERM") for line in lines)
    if "--recipe codecs" in command:
        assert "codecs.py:gpu" in lines[0] and "codecs.py:grey,gpu" in lines[1] and "estimator.py:codecs" in lines[2]
    else:
        assert "gpu.py:finetune" in lines[0] and "gpu.py:grey,finetune" in lines[1] and "train_estimator" in lines[2]


def dry_run(command, tmp_path):
    """As from a user's clone, whose origin the TPU script installs from on every worker."""
    import shutil

    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "launch", clone / "launch")
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "remote", "add", "origin", "https://example.com/qgac_jax.git"], check=True)
    proc = _run(_argv(command) + ["--dry-run"], cwd=clone, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert ("gcloud compute tpus tpu-vm create" in proc.stdout) or ("sbatch" in proc.stdout), proc.stdout


def restore(command, tmp_path):
    work = _sandbox(tmp_path)
    _onnx_for(command, work)
    proc = _run(_argv(command), cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    argv = _argv(command)
    inputs = argv[3:argv.index("--output")]
    names = ["a.jpg" if i.startswith("more_photos") else "b.jpg" if i.startswith("scans") else i for i in inputs]
    if any(n.endswith(".mp4") for n in names) and not (work / "clip.mp4").exists():
        pytest.skip("the clip needs PyAV (the extra `video`)")
    stems = [n.rsplit(".", 1)[0] for n in names]  # inputs that share a stem keep their whole names
    want = sorted(n if n.endswith(".mp4") else n + ".png" if stems.count(s) > 1 else s + ".png"
                  for n, s in zip(names, stems))
    assert sorted(p.name for p in (work / "restored").rglob("*") if p.is_file()) == want
    if "--show-quality" in command:
        assert "photo.jpg: file tables about quality 20" in proc.stdout, proc.stdout
        if "photo.webp" in inputs:
            assert "photo.webp: WEBP (lossy): VP8 quantizer index" in proc.stdout, proc.stdout


def restore_entry_point(command, tmp_path):
    """The console script beside `python -m`: the same job through `qgac-restore` (installed by pip)."""
    script = pathlib.Path(sys.executable).parent / "qgac-restore"
    if not script.exists():
        pytest.skip(f"{script} is absent (the package is not pip-installed in this environment)")
    restore(command.replace(".venv/bin/qgac-restore", ".venv/bin/python -m qgac_jax.restore"), tmp_path)
    work = _sandbox(tmp_path / "script")
    proc = _run([str(script)] + _argv(command)[1:], cwd=work)
    first = _argv(command)[1]
    output = first if first.endswith(".mp4") else first.rsplit(".", 1)[0] + ".png"
    assert proc.returncode == 0 and (work / "restored" / output).is_file(), proc.stderr[-3000:]


# A user's environment, where the suite's QGAC_BACKEND=jax would run something else: the default backend
# (ONNX Runtime on a CPU, the shipped graphs), for the documented runs of what a user runs.
AS_USERS = {"QGAC_BACKEND": ""}


def evaluate(command, tmp_path):
    """On one photo of the set the command names, cropped (`_shared_sample`)."""
    work = _sandbox(tmp_path)
    if "--video" in command:
        pytest.importorskip("av", reason="clips need PyAV (the extra `video`)")
        proc = _run(_argv(_shared_sample(command, tmp_path)) + ["--max-images", "1"], cwd=work)
        assert proc.returncode == 0, proc.stderr[-3000:]
        cases = re.search(r"--video (\S+)", command).group(1).split(",")
        assert all(f"| {case} |" in proc.stdout for case in cases), proc.stdout
        return
    # a set's sample (one 192-pixel crop) as a user runs it; the larger built-in photos run faster in the suite's JAX
    env = AS_USERS if "../shared/data" in command else None
    proc = _run(_argv(_shared_sample(command, tmp_path)) + ["--max-images", "1"], cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cases = re.findall(r"--(?:qualities|double) (\S+)", command)
    first = (",".join(cases) or "10,20,30,40").split(",")[0]
    codec = re.search(r"--codec (\w+)", command)
    label = f"{codec.group(1)} {first}" if codec and ":" not in first else Case.parse(first).name
    assert f"| {label} |" in proc.stdout, proc.stdout
    outputs = [a for a in _argv(command) if a.endswith((".json", ".png"))]
    assert all((work / o).is_file() for o in outputs)


def run_in_sandbox(extra, env=None):
    def run(command, tmp_path):
        work = _sandbox(tmp_path)
        argv = [a for a in _argv(command) if not (a.startswith("[") or a.endswith("]"))]  # drop [--optional V]
        proc = _run(argv + extra, cwd=work, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip() or list(work.rglob("*.png"))
    return run


def train_throughput(command, tmp_path):
    work = _sandbox(tmp_path)
    extra = ["--seconds", "0.2", "--workers", "2", "--batch", "2", "--patch", "32", "--image", "128x96", "--variant",
             "tiny"]
    proc = _run(_argv(command) + extra, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    step = next(line for line in proc.stdout.splitlines() if line.startswith("train step, fixed batch"))
    assert float(step.split(" TFLOP/s = ")[0].rsplit(", ", 1)[-1]) > 0  # FLOPs counted on any backend
    assert "of the fixed-batch step" in proc.stdout and "matmul float32" in proc.stdout


def vs_pytorch(command, tmp_path):
    pytest.importorskip("torch", reason="the PyTorch comparison needs torch (not a dependency; CI has none)")
    run_in_sandbox(["--quick", "--seconds", "0.1", "--json", str(tmp_path / "v.json")])(command, tmp_path)


def export_onnx(command, tmp_path):
    pytest.importorskip("jax2onnx", reason="the ONNX export needs the extra `onnx`")
    work = _sandbox(tmp_path)
    proc = _run(_argv(command), cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = _argv(command)[_argv(command).index("--output") + 1]
    assert (work / output).stat().st_size > 1e6 and "wrote" in proc.stdout


def restore_backends(command, tmp_path):
    pytest.importorskip("jax2onnx", reason="the ONNX comparison needs the extra `onnx`")
    run_in_sandbox(["--seconds", "0.05", "--sizes", "64x48", "--photo-megapixels", "0.2"])(command, tmp_path)


def make_calibration(command, tmp_path):
    """The shipped calibration crops are what the tool makes: the same names and pictures (the JPEG bytes may
    differ with the encoder's build)."""
    import numpy as np
    from PIL import Image

    work = _sandbox(tmp_path)
    proc = _run(_argv(command) + ["--out", "calibration"], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shipped = sorted((ROOT / "qgac_jax" / "pretrained" / "calibration").glob("*.jpg"))
    made = sorted((work / "calibration").glob("*.jpg"))
    assert [p.name for p in made] == [p.name for p in shipped] and len(made) == 32
    for a, b in zip(made, shipped):
        diff = np.asarray(Image.open(a), np.float64) - np.asarray(Image.open(b), np.float64)
        assert np.sqrt(np.mean(diff**2)) < 1.0, a.name


def average_exports(command, tmp_path):
    """The shipped colour model averaged with itself, in the command's own form (the fine-tune it names is a
    two-hour job)."""
    work = _sandbox(tmp_path)
    argv = _argv(command)
    tuned = next(a for a in argv[3:] if a.startswith("workdirs/"))
    (work / tuned).parent.mkdir(parents=True, exist_ok=True)
    (work / tuned).symlink_to(ROOT / "qgac_jax" / "pretrained" / "colour")
    (work / "qgac_jax").symlink_to(ROOT / "qgac_jax")
    proc = _run(argv, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / argv[argv.index("--out") + 1] / "model").is_dir()


def restore_dataset(command, tmp_path):
    """On a local Ray cluster in the sandbox: the PNG and a manifest (tests/test_restore_dataset.py has the rest)."""
    work = _sandbox(tmp_path)
    proc = _run(_argv(command), cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "restored" / "a.png").is_file() and list((work / "restored" / "_manifests").glob("*.parquet"))


def extras_exist(command, tmp_path):
    """`pip install -e '.[a,b]'`: each extra exists, and the test environment (the `test` extra) has them all."""
    import configparser

    extras = configparser.ConfigParser()
    extras.read(ROOT / "setup.cfg")
    declared = extras["options.extras_require"]
    names = re.search(r"\[([a-z,]+)\]", command).group(1).split(",")

    def brings(extra):  # the extras `extra` names as qgac_jax[...], and theirs in turn
        named = {n for m in re.findall(r"qgac_jax\[([a-z0-9,]+)\]", declared[extra]) for n in m.split(",")}
        return named.union(*(brings(n) for n in named)) if named else set()

    tested = brings("test")
    for name in names:
        assert name in declared, f"no extra {name!r} in setup.cfg"
        lines = [line.strip() for line in declared[name].strip().splitlines()]
        assert name in tested or all(line in declared["test"] for line in lines), name


PY = r"^\.venv/bin/python "  # how the docs run a module or a script
RULES = [
    (r"^python3 -m venv \.venv && \.venv/bin/pip install -e '\.\[test\]' && ", by_ci),
    (PY + r"-m pytest -q -n 2$", by_ci),
    (PY + r"-m pytest -q -n 2 -m \"not slow\"$", fast_tier),
    (r"^bash \.ci/run$", by_ci),
    (r"^bash \.ci/restore_install\.sh$", by_ci),
    (r"^python3 -m venv \.venv && \.venv/bin/pip install \.$", by_ci),
    (r"^\.venv/bin/pip install \.$", restore_install_named),
    (PY + r"-m qgac_jax\.train --config=configs/(?!(cpu|gpu|codecs|perceptual)\.py:|int8\.py)\w+\.py(:[\w,=]+)? "
          r"--workdir=workdirs/", train_short),
    (PY + r"-m qgac_jax\.train --config=configs/int8\.py --workdir=workdirs/", trained_in(
        "tests/test_restoration.py::test_the_int8_fine_tune_starts_from_the_shipped_model_with_calibrated_ranges_and_"
        "exports_them")),
    (PY + r"-m qgac_jax\.train --config=configs/(cpu|gpu|codecs|perceptual|int8)\.py:[\w,=]+ --workdir=workdirs/",
     train_preset),
    (PY + r"-m qgac_jax\.train_estimator --config=configs/estimator\.py --workdir=workdirs/", train_estimator_short),
    (PY + r"-m qgac_jax\.train_estimator --config=configs/estimator\.py:\w+ --workdir=workdirs/", train_preset),
    (PY + r"-m qgac_jax\.train --config=configs/(psnr|base)\.py --workdir=gs://", train_offline_div2k),
    (r"^launch/(tpu_vm|gpu_slurm)\.sh ", dry_run),
    (r"^launch/train_shipped\.sh ", train_shipped_dry_run),
    (PY + r"-m qgac_jax\.train --help$", covered_by("tests/test_config.py::test_help_lists_the_shipped_configs")),
    (r"^\.venv/bin/qgac-app$", covered_by(
        "tests/test_web_page.py::test_the_browser_restores_downloads_changes_the_guide_and_shows_errors")),
    (r"^\.venv/bin/pip install (-e )?'\.\[[a-z,]+\]'$", extras_exist),
    (r"^bash deploy/huggingface_space/build\.sh ", covered_by(
        "tests/test_web_page.py::test_the_hugging_face_space_assembles_and_its_app_builds_the_page")),
    (PY + r"-m qgac_jax\.restore ", restore),
    (PY + r"-m qgac_jax\.restore_dataset more_photos/ restored/$", restore_dataset),
    (PY + r"benchmarks/restore_dataset\.py", run_in_sandbox(["--photos", "2"])),
    (r"^\.venv/bin/qgac-restore ", restore_entry_point),
    (PY + r"-m qgac_jax\.evaluate ", evaluate),
    (PY + r"-m qgac_jax\.export ", export_onnx),
    (PY + r"-m qgac_jax\.tools\.make_figure ", run_in_sandbox([])),
    (PY + r"-m qgac_jax\.tools\.make_calibration$", make_calibration),
    (PY + r"-m qgac_jax\.tools\.realism_curve ", lambda c, t: run_in_sandbox(
        ["--max-images", "1", "--values", "0,0.5", "--qualities", "10"])(_shared_sample(c, t), t)),
    (PY + r"-m qgac_jax\.tools\.average_exports ", average_exports),
    (PY + r"-m qgac_jax\.tools\.convert_vgg ",
     covered_by("tests/test_vgg.py::test_convert_cli_from_a_local_keras_file_and_refuses_to_overwrite")),
    (PY + r"benchmarks/input_pipeline\.py( --codecs)?$", run_in_sandbox(["--seconds", "0.2", "--batch", "4"])),
    (PY + r"benchmarks/restore_memory\.py", run_in_sandbox(["--megapixels", "0.3"])),
    (PY + r"benchmarks/restore_consistent\.py ", lambda c, t: run_in_sandbox(["--max-images", "1"])(
        _shared_sample(c, t), t)),
    (PY + r"benchmarks/restore_video\.py", run_in_sandbox(["--sizes", "480p", "--frames", "1", "--long-frames", "3",
                                                            "--precisions", "float32", "--rounds", "1"])),
    (PY + r"benchmarks/train_throughput\.py ", train_throughput),
    (PY + r"benchmarks/vs_pytorch\.py ", vs_pytorch),
    (PY + r"benchmarks/restore_backends\.py", restore_backends),
    (PY + r"benchmarks/restore_precision\.py", run_in_sandbox(["--megapixels", "0.1", "--rounds", "1"], AS_USERS)),
    (PY + r"benchmarks/restore_jobs\.py", run_in_sandbox(["--count", "2", "--megapixels", "0.05"], AS_USERS)),
    (PY + r"benchmarks/restore_profile\.py", run_in_sandbox(["--megapixels", "0.2", "--png-levels", "1"])),
    (PY + r"benchmarks/int8_sensitivity\.py", run_in_sandbox(["--calibration", "2", "--rank", "2", "--keep", "1",
                                                                 "--seconds", "0.05"])),
    (PY + r"benchmarks/estimator_accuracy\.py ", lambda c, t: run_in_sandbox(["--max-images", "1"])(_shared(c), t)),
    (PY + r"benchmarks/restore_startup\.py ", lambda c, t: run_in_sandbox(["--rounds", "1"])(
        c.split(" --python")[0], t)),  # (this environment's interpreter: the sandbox has no lite/ or .venv/)
    (PY + r"benchmarks/restore_folder_memory\.py$", run_in_sandbox(["--megapixels", "0.05,0.1"], AS_USERS)),
    (PY + r"benchmarks/int8_quality\.py ", lambda c, t: run_in_sandbox(["--max-images", "1", "--cases", "10"])(
        _shared(c), t)),
    (PY + r"benchmarks/profile_step\.py$", run_in_sandbox(["--variant", "tiny", "--batch", "1", "--patch", "32",
                                                              "--seconds", "0.05"])),
]


def _rule(command):
    matches = [fn for pattern, fn in RULES if re.search(pattern, command)]
    assert len(matches) == 1, f"README command without exactly one rule in tests/test_readme.py: {command!r}"
    return matches[0]


def test_every_readme_command_has_a_rule():
    commands = readme_commands()
    assert len(commands) >= 15
    for command in commands:
        _rule(command)


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_readme_command(command, tmp_path):
    _rule(command)(command, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_snippets())))
def test_readme_python_snippet(index, tmp_path):
    """Each ```python block runs as written, given the photo, image and workdir it names."""
    snippet = python_snippets()[index]
    if "gradio_client" in snippet:  # talks to a running page: tests/test_web_page.py makes the same call
        covered_by("tests/test_web_page.py::test_gradio_client_gets_restores_png_and_hostile_uploads_get_a_line_each")(
            snippet, tmp_path)
        return
    if "../shared/data" in snippet:
        _shared(snippet)
        (tmp_path / "shared").symlink_to(SHARED_DATA.parent)  # ../shared/data from the sandbox
    work = _sandbox(tmp_path)
    _onnx_for(snippet, work)
    preamble = (
        "import numpy as np\nfrom PIL import Image\n"
        "image = np.asarray(Image.open('photo.jpg')); height, width = image.shape[:2]\n"
        "jpeg_bytes_or_array = open('photo.jpg', 'rb').read()\n"
    )
    proc = _run([sys.executable, "-c", preamble + snippet], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]

