"""Entry point of a sandbox's IPython kernel process.

Started as ``python -m hopx_kernel.server.runtime.kernel_launcher -f <connection file>``. Before
handing over to ``IPKernelApp`` it:

- applies resource caps passed by the server in ``HOPX_LOCAL_MEMORY_LIMIT_MB`` and
  ``HOPX_LOCAL_MAX_PROCS`` (``RLIMIT_AS`` / ``RLIMIT_NPROC``), then removes those
  variables and every Jupyter session variable from ``os.environ``;
- makes output prompt and bounded: ipykernel batches stream output for 200 ms, which
  would make the first line of ``print('x'); time.sleep(1)`` arrive late, and holds a
  flood of output whole (50 MiB written at once left as one 50 MB message after ~0.5 s).
  Here the first output of a cell, and after a quiet spell, goes within 5 ms, a steady
  stream every 100 ms, a writer with 256 Ki characters pending flushes them itself, and no message
  exceeds 960 Ki characters (one frame);
- keeps stdout/stderr order across the two streams: a write to one stream first sends
  whatever the other stream still buffers;
- writes leaner than ipykernel's own (the buffer key is cached per parent header, and a
  fork hook replaces a getpid() call per write), so a ``print`` loop in the sandbox runs
  ~1.5x faster than in a local ipykernel; echo takes ipykernel's path;
- a forked child writes into a pipe of its own, drained before the parent sends anything,
  so a joined child's output comes before the parent's later writes (:mod:`.forked_output`).
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from dataclasses import dataclass
from typing import Any

from ...frames import ASCII_CHUNK_CHARS
from ...hard_exit import exit_now
from ...text import packed_content
from .forked_output import ForkedOutput

MEMORY_ENV = "HOPX_LOCAL_MEMORY_LIMIT_MB"
NPROC_ENV = "HOPX_LOCAL_MAX_PROCS"
#: First output after a quiet spell is sent within this many seconds (ipykernel: 0.2)...
FLUSH_FIRST = 0.005
#: ...while a steady stream is batched at this interval: fewer, larger messages, and less
#: competition for the GIL with the code that prints.
FLUSH_STEADY = 0.1
#: No stream message carries more than this many characters, so 50 MiB written at once
#: starts arriving at once instead of after one 50 MB message is serialised.
MAX_MESSAGE_CHARS = ASCII_CHUNK_CHARS  # one message, one frame on the stream
#: Once this many characters wait in a stream's buffer, the writer flushes them itself.
FLUSH_SIZE = 256 * 1024


def _apply_limits() -> None:
    import resource

    memory = os.environ.pop(MEMORY_ENV, "")
    nproc = os.environ.pop(NPROC_ENV, "")
    if memory:
        limit = int(memory) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if nproc:
        limit = int(nproc)
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))


class _DirectSend:
    """Sends on an ipykernel IOPubThread's socket now (only valid on that thread)."""

    def __init__(self, pub) -> None:
        self.send_multipart = pub._really_send


@dataclass
class _StreamState:
    """What the patched write/flush remember per stream (stdout, stderr)."""

    parent: dict[str, Any] | None = None  # the parent header the cached buffer key is for
    key: frozenset[tuple[str, Any]] | None = None  # ipykernel's buffer key for that header
    pending: int = 0  # characters written since the last flush
    flushed_at: float = 0.0  # monotonic time of the last flush
    flushed_key: frozenset[tuple[str, Any]] | None = None  # the buffer key current at the last flush


def _patch_streams() -> None:
    """Prompt, ordered, bounded stream output (see the module docstring)."""
    import threading
    import time

    from ipykernel.iostream import OutStream

    last_stream: list = [None]  # the stream written to last, across stdout and stderr
    original_write = OutStream.write
    original_flush = OutStream._flush

    in_master = [True]  # False in a forked child (multiprocessing), where ipykernel's own path runs
    os.register_at_fork(after_in_child=lambda: in_master.__setitem__(0, False))
    forked = _forked_output(OutStream)
    # Our per-stream state lives beside ipykernel's object, not as attributes hung on it:
    # only stdout and stderr ever write here, so a plain dict keyed by the stream is enough
    # (one lookup per write; the streams live as long as the process).
    states: dict[OutStream, _StreamState] = {}

    def state_of(stream: OutStream) -> _StreamState:
        state = states.get(stream)
        if state is None:
            state = states[stream] = _StreamState()
        return state

    def lean_write(self: OutStream, string: str) -> int | None:
        last = last_stream[0]
        if last is not self:  # switching streams: send what the other one holds first
            if last is not None and last._flush_pending:
                last.flush()
            last_stream[0] = self
        if not (in_master[0] and self.echo is None and self.pub_thread is not None and type(string) is str):
            if not in_master[0] and type(string) is str and forked.write(self.name, string):
                return len(string)  # a forked child: straight into its pipe to the parent
            return original_write(self, string)  # the rare paths, as ipykernel does them
        # ipykernel's write, less a frozenset of the parent header and a getpid() per call
        state = state_of(self)
        parent = self.parent_header
        if parent is not state.parent or state.key is None:
            state.parent = parent
            state.key = frozenset(parent.items())
        with self._buffer_lock:
            self._buffers[state.key].write(string)
        if not self._flush_pending:
            self._schedule_flush()
        written = len(string)
        pending = state.pending + written
        if pending >= FLUSH_SIZE:
            # a lot is waiting: send it now, and let the writer wait for that (backpressure:
            # the first byte leaves at once and the buffer never holds a whole flood)
            pending = 0
            self.flush()
        state.pending = pending
        return written

    def schedule_flush(self: OutStream) -> None:
        if self._flush_pending:
            return
        self._flush_pending = True
        # "steady" means this cell's own output was flushed moments ago; the first write of
        # a new cell is never steady, or the previous cell's closing flush would hold it
        # back for the steady interval (back-to-back cells: first output ~107 ms, not 5)
        state = state_of(self)
        quiet = state.key is not state.flushed_key or time.monotonic() - state.flushed_at > 2 * FLUSH_STEADY
        interval = FLUSH_FIRST if quiet else FLUSH_STEADY
        self.pub_thread.schedule(lambda: self._io_loop.call_later(interval, self._flush))

    def timed_flush(self: OutStream) -> None:
        state = state_of(self)
        state.flushed_at = time.monotonic()
        state.flushed_key = state.key
        state.pending = 0
        pub = self.pub_thread
        if pub is None or threading.current_thread() is not pub.thread or self.echo is not None:
            original_flush(self)
            return
        # On the IO thread ipykernel's send() would queue each message back onto this same
        # thread, so nothing leaves until the whole batch is serialised; send each at once.
        self._flush_pending = False
        self._subprocess_flush_pending = False
        forked.drain()  # what joined children wrote comes before what the parent wrote since
        direct = _DirectSend(pub)
        for parent, data in self._flush_buffers():
            if data:
                self.session.pid = os.getpid()
                msg = self.session.msg("stream", {"name": self.name, "text": data}, parent=parent)
                for hook in self._hooks:
                    msg = hook(msg)
                    if msg is None:
                        return
                # the text as JSON several times faster than the packer (hooks saw a dict)
                msg["content"] = packed_content("stream", msg["content"])
                self.session.send(direct, msg, ident=self.topic)

    def bounded_buffers(self: OutStream):
        for frozen_parent, buffer in self._rotate_buffers().items():
            data = buffer.getvalue()
            buffer.close()
            parent = dict(frozen_parent)
            for start in range(0, max(len(data), 1), MAX_MESSAGE_CHARS):
                yield parent, data[start : start + MAX_MESSAGE_CHARS]

    # replacing methods on ipykernel's class is the point of this patch (mypy forbids it
    # by default: method-assign); the signatures match ipykernel 7's
    OutStream.write = lean_write  # type: ignore[method-assign]
    OutStream._schedule_flush = schedule_flush  # type: ignore[method-assign]
    OutStream._flush = timed_flush  # type: ignore[method-assign]
    OutStream._flush_buffers = bounded_buffers  # type: ignore[method-assign]


def _forked_output(OutStream) -> ForkedOutput:
    """Forked children's output through a pipe each (see :mod:`.forked_output`)."""
    from tornado.ioloop import IOLoop

    def streams() -> dict:
        return {s.name: s for s in (sys.stdout, sys.stderr) if isinstance(s, OutStream)}

    def send(name: str, text: str, parent: dict) -> None:
        stream = streams().get(name)
        if stream is None or stream.pub_thread is None:
            return
        msg = stream.session.msg("stream", {"name": name, "text": text}, parent=parent)
        stream.session.send(_DirectSend(stream.pub_thread), msg, ident=stream.topic)

    watched: set[int] = set()  # touched on the IO thread only

    def io_loop():
        stream = streams().get("stdout")
        return stream.pub_thread.io_loop if stream is not None and stream.pub_thread else None

    def start_watch(fd: int) -> None:
        loop = io_loop()
        if loop is not None and fd not in watched and forked.has(fd):
            watched.add(fd)
            loop.add_handler(fd, lambda fd, events: forked.readable(fd), IOLoop.READ)

    def watch(fd: int) -> None:
        loop = io_loop()
        if loop is not None:
            loop.add_callback(start_watch, fd)

    def unwatch(fd: int) -> None:
        loop = io_loop()
        if fd in watched and loop is not None:
            watched.discard(fd)
            loop.remove_handler(fd)

    forked = ForkedOutput(send, streams, watch, unwatch)
    forked.install()
    return forked


#: Messages the kernel's iopub socket queues for the server before its sender waits.
IOPUB_HWM = 64


def _blocking_iopub() -> None:
    """Make iopub wait for a slow server instead of dropping messages (``XPUB_NODROP``):
    a client that reads slowly slows the code that prints, and ``status: idle`` is never
    lost."""
    import zmq
    from ipykernel import kernelapp

    original = kernelapp.IPKernelApp.init_iopub

    def init_iopub(self, context):
        context.setsockopt(zmq.SNDHWM, IOPUB_HWM)
        context.setsockopt(zmq.XPUB_NODROP, 1)  # pyzmq skips it on other socket types
        try:
            original(self, context)
        finally:
            context.sockopts.pop(zmq.SNDHWM, None)
            context.sockopts.pop(zmq.XPUB_NODROP, None)

    # replacing ipykernel's method is the point (guarded by test_ipykernel_internals.py)
    kernelapp.IPKernelApp.init_iopub = init_iopub  # type: ignore[method-assign]


def _no_shell_channel_thread() -> None:
    """Read shell messages on the main loop, as ipykernel did before 7: its shell-channel
    thread only routes them to subshells, which nothing here uses (the client kernel
    refuses them), and costs every message a thread hop (a widget update's round trip).
    Comms still run while an async cell awaits (``shell_main`` does that either way)."""
    from ipykernel import kernelapp

    original = kernelapp.IPKernelApp.init_sockets

    def init_sockets(self):
        original(self)
        self.shell_channel_thread = None

    # replacing ipykernel's method is the point (guarded by test_ipykernel_internals.py)
    kernelapp.IPKernelApp.init_sockets = init_sockets  # type: ignore[method-assign]


#: Shell messages that reach this kernel only through the kernel channel.
COMM_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})


def _no_busy_for_comms() -> None:
    """Publish no ``busy`` for a comm message (they all come through the kernel channel):
    the server does not carry it (the client kernel publishes its own), and sending it put
    a serialisation here, a message and a read in the server ahead of every widget update's
    echo. ``idle`` still goes: it tells the server the message was handled. (ipykernel
    sends neither for a comm message it handles while an async cell awaits.)"""
    from ipykernel.kernelbase import Kernel

    original = Kernel._publish_status

    def publish_status(self, status, channel, parent=None):
        if status == "busy" and channel == "shell" and parent is None:
            header = self.get_parent("shell").get("header") or {}
            if header.get("msg_type") in COMM_MESSAGES:
                return
        original(self, status, channel, parent)

    # replacing ipykernel's method is the point (guarded by test_ipykernel_internals.py)
    Kernel._publish_status = publish_status  # type: ignore[method-assign]


def _drop_session_vars() -> None:
    for name in list(os.environ):
        if name.upper().startswith(("JPY_", "IPY_")):
            del os.environ[name]


def _confine() -> None:
    """Landlock: after the connection file is read and the sockets are bound, before any
    sandbox code runs (see :mod:`.confinement`). A failure stops the kernel."""
    from .confinement import apply_from_env

    try:
        apply_from_env()
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"hopx sandbox kernel: could not confine itself ({exc}); stopping\n")
        exit_now(3)


def _use_completer_cache() -> None:
    """Point Jedi at the server's read-only completer cache (jedi_cache.py), when given:
    IPython has imported Jedi already, so this costs nothing. Parso's attempts to add to
    the cache then fail with PermissionError, which it reports as a warning: not the
    user's business, so it is silenced."""
    folder = os.environ.pop("HOPX_JEDI_CACHE", None)
    if not folder:
        return
    try:
        import jedi
    except ImportError:
        return
    jedi.settings.cache_directory = folder
    warnings.filterwarnings("ignore", message="Tried to save a file to")


def main() -> None:
    """Apply limits and patches, then run ``IPKernelApp``."""
    _apply_limits()
    _patch_streams()
    _blocking_iopub()
    _no_shell_channel_thread()
    _no_busy_for_comms()
    from ipykernel import kernelapp  # reads JPY_PARENT_PID for its parent poller

    app = kernelapp.IPKernelApp.instance()
    try:
        app.initialize(sys.argv[1:] + ["--IPythonKernel._execute_sleep=0", "--IPKernelApp.log_level=ERROR"])
    except Exception:  # e.g. a port of the connection file taken by another process
        traceback.print_exc()
        exit_now(1)
    _drop_session_vars()
    _use_completer_cache()
    _confine()
    app.start()


if __name__ == "__main__":
    main()
