"""Configs: loaded by path, overridden from the command line, every mistake one line that names it."""

import dataclasses
import os
import pathlib
import subprocess
import sys

import pytest

from qgac_jax.training import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_load_runs_a_config_file_by_path_with_its_argument():
    c = config_lib.load(str(ROOT / "configs" / "gpu.py") + ":grey,steps=100")
    assert c.data.grey and c.model.channels == 1 and c.train.steps == 100
    with pytest.raises(ValueError, match="does not exist .*configs/smoke.py"):
        config_lib.load("configs/nope.py")


@pytest.mark.parametrize("spec, checks", [
    ("codecs.py", dict(steps=3_000, batch_size=8, codec_p_jpeg_first=0.0)),  # the shipped CPU recipe, as it was
    ("codecs.py:grey,gpu", dict(steps=8_000, batch_size=32, codec_p_jpeg_first=0.3, grey=True)),
    ("codecs.py:gpu,steps=50", dict(steps=50, batch_size=32, patch_size=128)),
    ("estimator.py:codecs,steps=40", dict(steps=40, codec_p_jpeg_first=0.5, pipeline="pillow")),
])
def test_the_codec_configs_validate_as_their_entry_points_check_them(spec, checks):
    from qgac_jax.training import sections

    t = sections.training(config_lib.load(str(ROOT / "configs" / spec)))
    sections.validate_training(t, losses=not spec.startswith("estimator"))  # as each trainer checks it
    for name, want in checks.items():
        got = t.train.steps if name == "steps" else getattr(t.data, name)
        assert got == want, (spec, name, got)
    assert t.data.mixes_codecs and t.train.init_from.endswith(("colour", "grey", "estimator"))


@pytest.mark.parametrize("key, text, want", [
    ("optim.lr", "3e-4", 3e-4), ("train.steps", "7", 7), ("optim.lr", "1", 1.0),
    ("data.sources", "('folder:/x', 'builtin')", ("folder:/x", "builtin")), ("model.variant", "small", "small"),
    ("loss.allow_random_vgg", "True", True),
])
def test_overrides_take_python_literals_of_the_fields_type(key, text, want):
    c = config_lib.defaults()
    config_lib.override(c, key, text)
    section, field = key.split(".")
    value = getattr(getattr(c, section), field)
    assert value == want and type(value) is type(want)


@pytest.mark.parametrize("key, text, message", [
    ("optim.no_such_key", "1", "unknown config key optim.no_such_key"),
    ("optimm.lr", "1", "unknown config key optimm "),
    ("train.steps", "many", "--config.train.steps=many: expected int, got str"),
    ("train.steps", "1.5", "expected int, got float"),
    ("loss.allow_random_vgg", "1", "expected bool"),
])
def test_overrides_refuse_unknown_keys_and_wrong_types(key, text, message):
    with pytest.raises(ValueError, match=message):
        config_lib.override(config_lib.defaults(), key, text)


def test_configs_import_nothing_but_the_package():
    for path in (ROOT / "configs").glob("*.py"):
        text = path.read_text()
        assert "from configs" not in text and "sys.path" not in text, path


@pytest.mark.slow
def test_an_unknown_key_on_the_command_line_is_one_line_within_seconds(tmp_path):
    for workdir in ([f"--workdir={tmp_path}"], []):  # the key is named first, with or without a workdir
        proc = subprocess.run([sys.executable, "-m", "qgac_jax.train", "--config=configs/smoke.py", *workdir,
                               "--config.optim.no_such_key=1"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr == "python -m qgac_jax.train: error: unknown config key optim.no_such_key\n"
    assert not list(tmp_path.iterdir())  # nothing started


@pytest.mark.slow
def test_help_lists_the_shipped_configs():
    proc = subprocess.run([sys.executable, "-m", "qgac_jax.train", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for name in ("base", "cpu", "gpu", "psnr", "smoke", "estimator"):
        assert f"configs/{name}.py: " in proc.stdout


def _documented_keys():
    """Every `section.field` the README, docs, configs and launch scripts name as a setting (`--config.KEY`, or
    in backticks), but module paths such as `data.on_device`."""
    import re

    from qgac_jax.training import sections

    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "configs").glob("*.py"),
             *(ROOT / "launch").glob("*.sh")]
    pattern = re.compile(rf"(?:--config\.|`)((?:{'|'.join(sections.SECTIONS)})\.[a-z_0-9]+)(?![.\w(])")
    keys = {k for path in texts for k in pattern.findall(path.read_text())}
    return sorted(k for k in keys if not k.endswith(".py")
                  and not (ROOT / "qgac_jax" / (k.replace(".", "/") + ".py")).exists())


def test_every_documented_config_key_is_a_field_every_shipped_config_it_applies_to_accepts():
    from qgac_jax.training import sections

    keys = _documented_keys()
    assert {"data.codec_p_jpeg_first", "loss.vgg_weights", "train.steps", "data.pipeline"} <= set(keys)
    configs = {p.name: config_lib.load(str(p)) for p in sorted((ROOT / "configs").glob("*.py"))
               if not p.name.startswith("_")}
    for key in keys:
        name, field = key.split(".")
        assert field in {f.name for f in dataclasses.fields(sections.SECTIONS[name])}, f"{key} is no config field"
        for config_name, c in configs.items():  # every config has every section: set here to its own value
            config_lib.override(c, key, repr(getattr(getattr(c, name), field)))
    for config_name, c in configs.items():
        sections.training(c)  # still valid after every override


def test_a_config_has_one_shape_from_its_file_to_the_step():
    """The file's TrainingConfig is what overrides set, the entry point checks and the step reads: no ConfigDict,
    no copy into another form (only an export stores the model's part as a dict)."""
    from qgac_jax.training import sections
    from qgac_jax.training import step as train_step

    config, _ = config_lib.command_line([f"--config={ROOT / 'configs' / 'smoke.py'}", "--workdir=w",
                                         "--config.eval.qualities=[10, 20]"], "train", "")
    assert type(config) is sections.TrainingConfig and config.eval.qualities == (10, 20)  # a list checked to a tuple
    assert sections.training(config) is config
    parts = train_step.make_parts(config)
    assert parts.loss is config.loss and parts.model.channels == config.model.channels
    with pytest.raises(ValueError, match="optim.lr must be float, got 'fast'"):
        config.optim.lr = "fast"
        sections.training(config)
