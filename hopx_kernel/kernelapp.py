"""Run the kernel process: ``IPKernelApp`` with :class:`~hopx_kernel.kernel.HopxKernel`.

Used by ``python -m hopx_kernel -f CONNECTION_FILE`` (what kernel.json runs) and by
``hopx-kernel kernel -f CONNECTION_FILE``.
"""

from __future__ import annotations


def launch(argv: list[str] | None = None) -> None:
    """Start the kernel with ``argv`` (``sys.argv[1:]`` when None); never returns."""
    # Embedded mode: boot the local sandbox server while ipykernel imports (~0.3 s saved).
    from . import embedded

    embedded.prestart(argv)
    # Cloud mode: create the sandbox while ipykernel imports (the create, token and /health)
    from . import early_sandbox

    early_sandbox.prestart()
    try:
        _run(argv)
    finally:  # the kernel failed before it ran (a bad connection file): delete what began
        early_sandbox.discard()


def _run(argv: list[str] | None) -> None:
    import logging
    import os

    from ipykernel.kernelapp import IPKernelApp

    from . import early_sandbox
    from .kernel import HopxKernel

    # outstream_class=None: this process prints nothing of the user's, so its own stdout and
    # stderr stay the real ones (stray warnings reach the Jupyter log, never a notebook) and
    # ipykernel's per-cell flushes of captured output cost nothing.
    class App(IPKernelApp):
        def init_sockets(self) -> None:
            # No shell-channel thread: it only routes shell messages to subshells, which
            # this kernel refuses; without it ipykernel reads shell on the main loop, as
            # before version 7, and every message (a widget update) skips a thread hop.
            super().init_sockets()
            self.shell_channel_thread = None

    # traitlets names an application's logger after its class: keep ipykernel's name, so
    # what this kernel logs reads as a local kernel's ("[IPKernelApp] WARNING | ...")
    App.__name__ = App.__qualname__ = IPKernelApp.__name__
    app = App.instance(kernel_class=HopxKernel, outstream_class=None)
    app.initialize(argv)
    status = 1
    try:
        app.start()
        status = 0
    finally:
        # The sandbox was deleted and the local server stopped in do_shutdown. Exit now:
        # ipykernel 7.4's close() at interpreter exit can deadlock for seconds (the control
        # thread flushes into the IOPub thread that close() already stopped).
        early_sandbox.discard()  # a sandbox created early and never used is deleted
        logging.shutdown()
        os._exit(status)
