"""The trainers' one `main`: the command line read and typed once, logging, several hosts, one-line errors."""

from __future__ import annotations

import logging
import sys
from typing import Callable, Optional, Sequence


def require_jax(prog: str) -> None:
    """Exits with one line where JAX is not installed (the restore-only install): before a trainer is imported."""
    from qgac_jax.models import jax_installed

    if not jax_installed():
        sys.exit(f"{prog}: error: training needs JAX and its stack, which this install left out: "
                 "pip install '.[train]'")


def main(train_and_evaluate: Callable, prog: str, description: str, argv: Optional[Sequence[str]] = None) -> None:
    """`--config=FILE[:ARG] --workdir=DIR [--config.KEY=VALUE ...]` -> train_and_evaluate(typed config, workdir).

    A mistake in the command line or the config exits 2 with one line (argparse); one found when training
    starts (a missing data folder, a non-finite loss) exits 1 with one line.
    """
    from qgac_jax.commands.logs import quiet_third_party
    from qgac_jax.training import config as config_lib
    from qgac_jax.training import loop, sharding

    config, workdir = config_lib.command_line(sys.argv[1:] if argv is None else argv, prog, description)
    quiet_third_party()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("qgac_jax").setLevel(logging.INFO)
    sharding.initialize_distributed()
    try:
        train_and_evaluate(config, workdir)
    except (ValueError, loop.NonFiniteLossError) as err:
        sys.exit(f"error: {err}")
