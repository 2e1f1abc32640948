"""A web page that restores photos, served on this machine (Gradio; the extra `app`).

    python -m qgac_jax.app [--host 127.0.0.1] [--port 7860] [--share] [--checkpoint PATH] [--backend B]
        [--precision float32|int8|auto]

Open the printed address in a browser: upload photos, choose what the network is told,
compare before and after, download the lossless PNGs. The page restores
with `restore`'s engine and settings (docs/web_page.md). It listens on
127.0.0.1 only, unless --host says otherwise; --share asks Gradio for a
public link (off unless given).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from qgac_jax.commands import arguments, engines, logs


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be a whole number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"--port must lie in 1..65535, got {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=logs.prog("qgac_jax.app"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=_port, default=7860, help="port (default 7860)")
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a public link (off by default)")
    arguments.add_checkpoint(parser, "the shipped models")
    engines.add_arguments(parser)
    arguments.add_max_pixels(parser)
    args = parser.parse_args(argv)
    engines.check_arguments(parser, args)
    if importlib.util.find_spec("gradio") is None:
        parser.error("the web page needs the extra `app`: pip install -e '.[app]'")
    return args


def main(argv=None) -> None:
    from qgac_jax.commands.logs import quiet_third_party

    args = parse_args(argv)
    quiet_third_party()
    from qgac_jax.apps import web_page
    from qgac_jax.commands import jobs

    settings = jobs.settings(args)
    try:
        _, url = web_page.serve(settings, args.host, args.port, args.share, block=False)
    except OSError as err:
        sys.exit(f"error: cannot listen on {args.host}:{args.port} ({err})")
    print(f"restoring page at {url} (Ctrl-C stops it)", flush=True)
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
