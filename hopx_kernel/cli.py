"""The ``hopx-kernel`` command: ``install``, ``serve``, ``kernel``."""

from __future__ import annotations

import sys

USAGE = """usage: hopx-kernel COMMAND [ARGS]

commands:
  install   write the "HopX Remote Python" kernelspec (see: hopx-kernel install --help)
  serve     run the local HopX-protocol sandbox server on 127.0.0.1 (see: hopx-kernel serve --help)
  kernel    run the kernel: hopx-kernel kernel -f CONNECTION_FILE (Jupyter does this)
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv else ""
    if command == "install":
        from .kernelspec import main as install

        return install(argv)
    if command == "serve":
        from .server.main import main as serve

        return serve(argv)
    if command == "kernel":
        from .kernelapp import launch

        launch(argv)  # never returns
    if command in ("--version", "-V"):
        from . import __version__

        print(__version__)
        return 0
    print(USAGE, file=sys.stdout if command in ("-h", "--help", "help") else sys.stderr, end="")
    return 0 if command in ("-h", "--help", "help") else 2
