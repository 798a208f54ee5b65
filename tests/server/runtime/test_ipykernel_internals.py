"""The private parts of ipykernel's ``OutStream`` that ``hopx_kernel/server/runtime/kernel_launcher.py``
replaces or relies on. If ipykernel changes them, this fails and says what moved, before
the sandbox's output goes quietly wrong (pyproject.toml also bounds ipykernel below 8).

Checked on a real ``OutStream`` over a real (idle) ``IOPubThread``, unpatched (the patch is
applied only inside sandbox kernel processes).
"""

from __future__ import annotations

import inspect
import threading

import ipykernel
import pytest
import zmq
from ipykernel.iostream import IOPubThread, OutStream
from jupyter_client.session import Session

WHERE = "hopx_kernel/server/runtime/kernel_launcher.py (_patch_streams)"


def _changed(what: str) -> str:
    return f"ipykernel {ipykernel.__version__} changed {what}, which {WHERE} depends on; update the patch"


@pytest.fixture
def stream():
    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    socket.bind("inproc://hopx-internals")
    pub = IOPubThread(socket)  # not started: nothing is sent, only the shapes are looked at
    out = OutStream(Session(), pub, "stdout", watchfd=False)
    yield out, pub
    pub.close()
    context.destroy(linger=0)


@pytest.mark.parametrize(
    "method", ["write", "flush", "_flush", "_schedule_flush", "_flush_buffers", "_rotate_buffers"]
)
def test_the_replaced_and_called_methods_exist(method):
    assert callable(getattr(OutStream, method, None)), _changed(f"OutStream.{method} (gone)")


def test_the_instance_state_the_patch_reads_and_writes(stream):
    out, _ = stream
    for name in (
        "_flush_pending",
        "_subprocess_flush_pending",
        "_buffer_lock",
        "_buffers",
        "_io_loop",
        "echo",
        "pub_thread",
        "parent_header",
        "session",
        "name",
        "topic",
        "_hooks",
    ):
        assert hasattr(out, name), _changed(f"OutStream.{name} (gone)")
    assert out._flush_pending is False, _changed("OutStream._flush_pending (no longer a bool)")
    assert out.topic == b"stream.stdout", _changed("OutStream.topic")
    assert isinstance(out._buffer_lock, type(threading.RLock())), _changed("OutStream._buffer_lock")


def test_the_iopub_thread_parts_the_patch_uses(stream):
    _, pub = stream
    for name in ("_really_send", "schedule", "thread", "io_loop"):
        assert hasattr(pub, name), _changed(f"IOPubThread.{name} (gone)")
    assert isinstance(pub.thread, threading.Thread), _changed("IOPubThread.thread")


def test_buffers_are_keyed_by_the_frozen_parent_header(stream):
    # the lean write caches this key; ipykernel's own write (forked children, echo) must
    # land in the same buffer, or one cell's output would be split in two messages
    out, _ = stream
    out.parent_header = {"msg_id": "m1"}
    out.write("a")
    buffers = out._rotate_buffers()
    assert list(buffers) == [frozenset({"msg_id": "m1"}.items())], _changed("the key of OutStream._buffers")
    assert buffers[frozenset({"msg_id": "m1"}.items())].getvalue() == "a", _changed(
        "OutStream._buffers values"
    )
    assert "self._buffers[frozenset(parent.items())]" in inspect.getsource(OutStream.write), _changed(
        "how OutStream.write keys its buffers"
    )


def test_flush_buffers_yields_parent_and_text(stream):
    out, _ = stream
    out.parent_header = {"msg_id": "m2"}
    out.write("xy")
    assert list(out._flush_buffers()) == [({"msg_id": "m2"}, "xy")], _changed("OutStream._flush_buffers")


def test_the_flush_the_patch_reimplements_is_still_what_it_was():
    # the patched flush sends like this one: buffers → session.msg → hooks → session.send
    source = inspect.getsource(OutStream._flush)
    for piece in (
        "self._flush_buffers()",
        "self._hooks",
        "self.session.msg(",
        "self.session.send(",
        "self._subprocess_flush_pending = False",
    ):
        assert piece in source, _changed(f"OutStream._flush (no longer has {piece!r})")
    assert "self._flush_pending = True" in inspect.getsource(OutStream._schedule_flush), _changed(
        "OutStream._schedule_flush"
    )


def test_ipykernel_still_runs_without_a_shell_channel_thread():
    """Both kernels (this package's and the sandbox's) set ``shell_channel_thread = None``
    after ``init_sockets``: ipykernel must still read shell on the main loop then."""
    from ipykernel.kernelapp import IPKernelApp
    from ipykernel.kernelbase import Kernel

    assert callable(getattr(IPKernelApp, "init_sockets", None)), _changed("IPKernelApp.init_sockets (gone)")
    init_kernel = inspect.getsource(IPKernelApp.init_kernel)
    assert "if self.shell_channel_thread:" in init_kernel and "ZMQStream(self.shell_socket)" in init_kernel, (
        _changed("IPKernelApp.init_kernel (no path without the shell-channel thread)")
    )
    assert "self.shell_channel_thread is not None" in inspect.getsource(
        Kernel._supports_kernel_subshells.fget  # type: ignore[attr-defined]
    ), _changed("Kernel._supports_kernel_subshells")


def test_the_status_publishing_the_sandbox_kernel_patches():
    """kernel_launcher._no_busy_for_comms replaces ``Kernel._publish_status`` and reads the
    shell parent: dispatch_shell must still publish busy through it, with no parent."""
    from ipykernel.kernelbase import Kernel

    params = list(inspect.signature(Kernel._publish_status).parameters)
    assert params == ["self", "status", "channel", "parent"], _changed("Kernel._publish_status")
    assert 'self._publish_status("busy", "shell")' in inspect.getsource(Kernel.dispatch_shell), _changed(
        "Kernel.dispatch_shell (busy)"
    )
    assert callable(getattr(Kernel, "get_parent", None)), _changed("Kernel.get_parent (gone)")


def test_the_iopub_thread_parts_the_client_kernel_runs_on_its_main_loop():
    """hopx_kernel/kernelapp.py (MainLoopIOPub) builds ipykernel's IOPubThread with the main
    thread's loop instead of a thread's, by swapping the loop factory IOPubThread.__init__
    calls and the class name init_iopub builds; every send must still go through
    schedule(), and start() must be what starts the thread."""
    from ipykernel import iostream, kernelapp

    assert "make_selector_io_loop()" in inspect.getsource(IOPubThread.__init__), _changed(
        "IOPubThread.__init__ (its loop)"
    )
    assert callable(getattr(iostream, "make_selector_io_loop", None)), _changed(
        "iostream.make_selector_io_loop"
    )
    init_iopub = inspect.getsource(kernelapp.IPKernelApp.init_iopub)
    assert "IOPubThread(" in init_iopub and "self.iopub_thread.start()" in init_iopub, _changed(
        "IPKernelApp.init_iopub"
    )
    assert kernelapp.IOPubThread is IOPubThread, _changed("kernelapp.IOPubThread")
    assert "self.schedule(" in inspect.getsource(IOPubThread.send_multipart), _changed(
        "IOPubThread.send_multipart"
    )
    assert "self.thread.start()" in inspect.getsource(IOPubThread.start), _changed("IOPubThread.start")
