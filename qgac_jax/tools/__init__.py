"""Command-line tools that prepare files (run with python -m qgac_jax.tools.<name>)."""
