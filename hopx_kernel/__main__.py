"""``python -m hopx_kernel``: the kernel (``-f CONNECTION_FILE``), or ``install`` / ``serve``."""

import sys


def main() -> None:
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-") or "--help" in sys.argv[1:2]:
        from .cli import main as cli

        sys.exit(cli())
    # Embedded mode: boot the local sandbox server while ipykernel imports (~0.3 s saved).
    from . import embedded

    embedded.prestart()

    import logging
    import os

    from ipykernel.kernelapp import IPKernelApp

    from .kernel import HopxKernel

    # outstream_class=None: this process prints nothing of the user's, so its own stdout and
    # stderr stay the real ones (stray warnings reach the Jupyter log, never a notebook) and
    # ipykernel's per-cell flushes of captured output cost nothing.
    app = IPKernelApp.instance(kernel_class=HopxKernel, outstream_class=None)
    app.initialize()
    status = 1
    try:
        app.start()
        status = 0
    finally:
        # The sandbox was deleted and the local server stopped in do_shutdown. Exit now:
        # ipykernel 7.4's close() at interpreter exit can deadlock for seconds (the control
        # thread flushes into the IOPub thread that close() already stopped).
        logging.shutdown()
        os._exit(status)


if __name__ == "__main__":
    main()
