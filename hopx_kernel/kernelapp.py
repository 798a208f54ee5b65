"""Run the kernel process: ``IPKernelApp`` with :class:`~hopx_kernel.kernel.HopxKernel`.

Used by ``python -m hopx_kernel -f CONNECTION_FILE`` (what kernel.json runs) and by
``hopx-kernel kernel -f CONNECTION_FILE``.
"""

from __future__ import annotations


def launch(argv: list[str] | None = None) -> None:
    """Start the kernel with ``argv`` (``sys.argv[1:]`` when None); never returns."""
    # Cloud mode: create the sandbox while ipykernel imports (the create, token and /health);
    # first, so the create goes out before the embedded module's imports (asyncio, ~50 ms)
    from . import early_sandbox

    early_sandbox.prestart()
    # Embedded mode: boot the local sandbox server while ipykernel imports (~0.3 s saved).
    from . import embedded

    embedded.prestart(argv)
    status = 1
    try:
        _run(argv)
        status = 0
    except SystemExit as exc:  # --help, --version, or traitlets refusing an option
        status = _exit_status(exc)
    except BaseException:  # the kernel failed before it ran: a bad connection file, a port in use
        import traceback

        traceback.print_exc()
    # Undo what began and never ran (a sandbox created early, a server started early), then
    # exit now: ipykernel's close() at interpreter exit hangs on its ZMQ context when a
    # socket failed to bind (a local ipykernel hangs there too), and a kernel that hangs
    # keeps its server and sandbox, where jupyter_client needs it to die to start another.
    embedded.discard()
    early_sandbox.discard()
    from .hard_exit import exit_now

    exit_now(status)


def _exit_status(exc: SystemExit) -> int:
    """The status ``sys.exit(code)`` would give (printing a message code, as Python does).

    Example:
        >>> _exit_status(SystemExit()), _exit_status(SystemExit(2))
        (0, 2)
    """
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    import sys

    print(exc.code, file=sys.stderr)
    return 1


def _run(argv: list[str] | None) -> None:
    import threading

    from ipykernel import iostream, kernelapp
    from ipykernel.kernelapp import IPKernelApp
    from tornado.ioloop import IOLoop

    from .kernel import HopxKernel

    class MainLoopIOPub(iostream.IOPubThread):
        """ipykernel's IOPub "thread" without the thread: the main loop sends.

        This process runs no user code; the main loop publishes nearly everything, and
        handing each message to a thread of its own (a wake-up, the GIL back and forth)
        held up every message the sandbox sends back, a widget update's echo among them.
        The socket is still used by one thread only: what another thread publishes (the
        control thread's status) is handed to the main loop, in order, and the XPUB's
        subscriptions are read there too.
        """

        def __init__(self, socket, pipe=False, session=None):
            # the streams it makes (subscriptions) go on the main thread's loop
            make_loop = iostream.make_selector_io_loop
            iostream.make_selector_io_loop = IOLoop.current
            try:
                super().__init__(socket, pipe=False, session=session)  # no forked children here
            finally:
                iostream.make_selector_io_loop = make_loop
            self._main = threading.current_thread()

        def start(self) -> None:
            pass  # no thread

        def schedule(self, f) -> None:
            if threading.current_thread() is self._main:
                f()
            else:
                self.io_loop.add_callback(f)

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

        def init_iopub(self, context) -> None:
            # what ipykernel's init_iopub builds (guarded by test_ipykernel_internals.py)
            kernelapp.IOPubThread = MainLoopIOPub  # type: ignore[misc]
            try:
                super().init_iopub(context)
            finally:
                kernelapp.IOPubThread = iostream.IOPubThread  # type: ignore[misc]

    # traitlets names an application's logger after its class: keep ipykernel's name, so
    # what this kernel logs reads as a local kernel's ("[IPKernelApp] WARNING | ...")
    App.__name__ = App.__qualname__ = IPKernelApp.__name__
    app = App.instance(kernel_class=HopxKernel, outstream_class=None)
    app.initialize(argv)
    # The sandbox was deleted and the local server stopped in do_shutdown; launch() exits
    # at once: ipykernel 7.4's close() at interpreter exit can deadlock for seconds (the
    # control thread flushes into the IOPub thread that close() already stopped).
    app.start()
