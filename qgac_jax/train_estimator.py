"""Train the quality estimator that restore asks how often a photo was saved (docs/recompressed.md).

    python -m qgac_jax.train_estimator --config=configs/estimator.py --workdir=workdirs/estimator

It learns the effective IJG quality of single and double JPEG patches (and,
with configs/estimator.py:codecs, of WebP, AVIF and HEIC files converted from
a JPEG) from the restorer's data stream. Resume, SIGTERM, multi-host and the
export work as in `python -m qgac_jax.train`.
"""

from __future__ import annotations


def main(argv=None) -> None:
    """`python -m qgac_jax.train_estimator`."""
    from qgac_jax.commands import logs
    from qgac_jax.training import entry

    entry.require_jax(logs.prog("qgac_jax.train_estimator"))
    from qgac_jax.training import estimation

    entry.main(estimation.train_and_evaluate, logs.prog("qgac_jax.train_estimator"), __doc__, argv)


if __name__ == "__main__":
    main()
