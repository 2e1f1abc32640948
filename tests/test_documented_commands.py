"""Fast tier: every command line of the README and docs/ is accepted by its CLI's own parser.

`test_readme.py` (slow tier) runs the same commands; this checks, in well under a second, that no flag,
config file or config key they name has gone.
"""

import re
import shlex

from _documented import ROOT, readme_commands


def _parse_with_the_cli(command):
    """The command's arguments through its CLI's own parser, in-process (no model, no data touched)."""
    from qgac_jax.training import config as config_lib
    from qgac_jax import evaluate as evaluate_cli
    from qgac_jax import export as export_cli
    from qgac_jax import restore as restore_cli

    argv = [a for a in shlex.split(command) if not (a.startswith("[") or a.endswith("]"))]
    module, args = argv[2], argv[3:]
    if module in ("qgac_jax.train", "qgac_jax.train_estimator"):
        args = [a if not a.startswith("--config=") else "--config=" + str(ROOT / a[len("--config="):]) for a in args]
        config_lib.command_line(args, module, "")
    else:
        parse = {"qgac_jax.restore": restore_cli.parse_args, "qgac_jax.export": export_cli.parse_args,
                 "qgac_jax.evaluate": evaluate_cli.parse_args}[module]
        parse(args)


def test_every_documented_command_line_parses():
    """Fast tier: each `.venv/bin/python -m qgac_jax.X ...` of the README and docs/ is accepted by X's parser."""
    modules = r"\.venv/bin/python -m qgac_jax\.(train|train_estimator|restore|evaluate|export) "
    commands = [c for c in readme_commands() if re.match(modules, c)]
    assert len(commands) >= 15
    for command in commands:
        try:
            _parse_with_the_cli(command)
        except SystemExit as err:
            if err.code == 0 and "--help" in command:
                continue
            raise AssertionError(f"{command!r} is refused by its parser (exit {err.code})") from None
