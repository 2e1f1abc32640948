"""The commands and Python snippets of the README and docs/, and a sandbox holding what they name."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from conftest import SHARED_DATA, xla_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = README + "".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
VENV_BIN = pathlib.Path(sys.executable).parent  # what .venv/bin/ is for the environment under test


def readme_commands():
    """Shell commands of the README: code-block lines (continuations joined, comments cut) and inline
    code that starts like a command and has arguments."""
    commands = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", DOCS, re.S):
        if lang == "python":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                commands.append(re.sub(r"\s+", " ", line))
    for span in re.findall(r"`([^`\n]+)`", DOCS):
        if re.match(r"(python3? |pip |bash |launch/|\.venv/bin/)", span) and " " in span.split(" -m ")[-1]:
            commands.append(span)
    return list(dict.fromkeys(commands))  # once each, in order


def python_snippets():
    return [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", DOCS, re.S) if lang == "python"]


def _env():
    """A fresh shell's: the venv's bin/ is not on PATH (a command that needs it names it)."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and pathlib.Path(p).resolve() != VENV_BIN.resolve())
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT), XLA_FLAGS=xla_flags(), PATH=path)


def _run(argv, cwd=ROOT, timeout=600, env=None):
    """argv in a fresh shell's environment (`_env`), with `env`'s variables on top."""
    return subprocess.run(argv, cwd=cwd, env=dict(_env(), **(env or {})), capture_output=True, text=True,
                          timeout=timeout)


def _argv(command):
    """The command's argv as a fresh shell runs it from the checkout: `.venv/bin/X` is this environment's X. A
    bare `python` or `pip` would run whatever the shell's PATH holds (no venv there): documented commands name
    the venv's."""
    argv = shlex.split(command)
    assert argv[0] not in ("python", "pip", "qgac-restore"), f"{command!r} needs the venv's path (.venv/bin/...)"
    if argv[0].startswith(".venv/bin/"):
        argv[0] = str(VENV_BIN / argv[0][len(".venv/bin/"):])
    return argv


def _shared(command):
    if "../shared/data" in command:
        if not SHARED_DATA.is_dir():
            pytest.skip(f"{SHARED_DATA} is absent (only a development checkout has ../shared/data)")
        command = command.replace("../shared/data", str(SHARED_DATA))
    return command


def _shared_sample(command, tmp_path, side: int = 192):
    """`_shared`, with each ../shared/data/SET the command names replaced by a folder holding SET's first photo
    cropped at its centre to `side` pixels: the command's path (its flags, cases, models) runs whole on a
    photo of that set, at the cost of one small photo (the sets' full runs are the measured ones in docs/)."""
    from PIL import Image

    for name in sorted(set(re.findall(r"\.\./shared/data/(\w+)", command))):
        if not SHARED_DATA.is_dir():
            pytest.skip(f"{SHARED_DATA} is absent (only a development checkout has ../shared/data)")
        first = sorted(p for p in (SHARED_DATA / name).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))[0]
        photo = Image.open(first)
        left, top = max(0, (photo.width - side) // 2), max(0, (photo.height - side) // 2)
        folder = tmp_path / f"sample_{name}"
        folder.mkdir(parents=True, exist_ok=True)
        photo.crop((left, top, min(photo.width, left + side), min(photo.height, top + side))).save(folder / first.name)
        command = command.replace(f"../shared/data/{name}", str(folder))
    return command


def _sandbox(tmp_path):
    """A working folder holding what the README's commands name: photos, a workdir, docs/."""
    import numpy as np
    import skimage.data
    from PIL import Image

    work = tmp_path / "work"
    for folder in ("more_photos", "scans", "docs", "workdirs"):
        (work / folder).mkdir(parents=True)
    photo = skimage.data.coffee()[:64, :96]
    Image.fromarray(photo).save(work / "photo.jpg", quality=20)
    Image.fromarray(photo).save(work / "photo.webp", quality=20)
    Image.fromarray(photo).save(work / "photo.avif", quality=20)
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        Image.fromarray(photo).save(work / "photo.heic", quality=20)
    except ImportError:  # (the extra `test` has it)
        pass
    Image.fromarray(photo[::-1]).save(work / "more_photos" / "a.jpg", quality=30)
    Image.fromarray(np.asarray(Image.fromarray(photo).convert("L"))).save(work / "scans" / "b.jpg", quality=10)
    (work / "workdirs" / "cpu").symlink_to(ROOT / "qgac_jax" / "pretrained" / "colour")
    try:  # a short clip (docs/video.md)
        from _clips import make_clip

        make_clip(work / "clip.mp4", "h264", frames=4)
    except BaseException:  # (no PyAV: the video commands skip)  # noqa: BLE001 - pytest's Skipped too
        pass
    for folder in ("benchmarks", "configs"):  # scripts the README runs from the repository root
        (work / folder).symlink_to(ROOT / folder)
    return work


_CONVERTED = []  # the first qgac_colour.onnx written this session: later sandboxes get a copy


def _onnx_for(text, work):
    """Puts the ONNX export a README command or snippet names (qgac_colour.onnx) into the sandbox, converted
    by the export CLI once per session (the export command's own rule converts on every run)."""
    import shutil

    if "qgac_colour.onnx" not in text or (work / "qgac_colour.onnx").exists():
        return
    if _CONVERTED:
        shutil.copy(_CONVERTED[0], work / "qgac_colour.onnx")
        return
    pytest.importorskip("jax2onnx", reason="the ONNX export needs the extra `onnx`")
    proc = _run([sys.executable, "-m", "qgac_jax.export", "--output", "qgac_colour.onnx"], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _CONVERTED.append(work / "qgac_colour.onnx")


# ----------------------------------------------------------------------------- the training commands

SHORT_TRAINING = ["--config.train.steps=1", "--config.train.checkpoint_every=1", "--config.train.eval_every=1",
                  "--config.train.log_every=1", "--config.data.patch_size=32", "--config.data.batch_size=2",
                  "--config.eval.max_images=1", "--config.eval.qualities=(10,)"]


def train_short(command, tmp_path):
    argv = [a if not a.startswith("--workdir=") else f"--workdir={tmp_path / 'w'}" for a in _argv(command)]
    # The smallest network where the command trains from scratch (the loop, not the variant, is under test;
    # a fine-tune keeps its variant, which must match the export it starts from).
    fine_tune = any(k in command for k in ("finetune", "codecs.py", "perceptual.py", "int8.py", "video.py"))
    tiny = [] if fine_tune else ["--config.model.variant=tiny"]
    proc = _run(argv + SHORT_TRAINING + tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "w" / "export").is_dir()


def covered_by(test):
    """A command whose path a test runs (one that downloads, say, run there on a local file): the test must exist."""
    def check(command, tmp_path):
        path, name = test.split("::")
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), f"{test} is gone"
    return check


def _checked_config(argv, estimator: bool = False):
    """The config of a training command line, read as the command reads it and checked as training starts."""
    from qgac_jax.training import config as config_lib
    from qgac_jax.training import sections

    config, _ = config_lib.command_line(argv, "test", "")
    sections.validate_training(config, losses=not estimator)
    return config


def train_preset(command, tmp_path):
    """A preset of a config file that another documented command trains (`configs/X.py:PRESET` beside
    `configs/X.py`: a GPU's sizes, grey, a fine-tune): read and checked as the trainer reads it (every key typed,
    the data sources found), its model the architecture of the plain config's, and the export it starts from
    there with its variant and channels. The training path itself runs in the plain command's test, once."""
    from qgac_jax.models import exports
    from qgac_jax.training import config as config_lib

    argv = _argv(command)[3:]
    plain = [re.sub(r"^(--config=[^:]+):.*", r"\1", a) for a in argv]
    config_file = next(a for a in plain if a.startswith("--config="))
    assert plain != argv and any(f" {config_file} " in c for c in readme_commands()), command
    estimator = "train_estimator" in command
    config = _checked_config(argv, estimator)
    base, _ = config_lib.command_line(plain, "test", "")
    assert type(config) is type(base) and (estimator or config.model.architecture == base.model.architecture)
    if config.train.init_from:
        start = exports.read_model_config(config.train.init_from)
        if estimator:
            assert start["kind"] == "estimator"
        else:
            assert (start["variant"], start["channels"]) == (config.model.variant, config.model.channels)


def trained_in(test: str):
    """A config that a test trains in-process through the trainer's own function (`train_and_evaluate`, as the
    command reaches it through `training.entry`): read and checked here as the command line reads it, and the
    test that trains it named (the command line itself runs in every other training command's test)."""
    def check(command, tmp_path):
        covered_by(test)(command, tmp_path)
        path = test.split("::")[0]
        argv = _argv(command)[3:]
        _checked_config(argv)
        config_file = next(a for a in argv if a.startswith("--config=")).split("=", 1)[1].split(":")[0]
        assert config_file in (ROOT / path).read_text(), f"{test} does not train {config_file}"
    return check


def train_estimator_short(command, tmp_path):
    argv = [a if not a.startswith("--workdir=") else f"--workdir={tmp_path / 'w'}" for a in _argv(command)]
    short = ["--config.train.steps=1", "--config.train.checkpoint_every=1", "--config.train.eval_every=1",
             "--config.train.log_every=1", "--config.data.patch_size=40", "--config.data.batch_size=2",
             "--config.eval.max_images=1", "--config.eval.qualities=(10,)", "--config.eval.double=()"]
    proc = _run(argv + short)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "w" / "export").is_dir()
