"""A forked child's output, in order with its parent's: part of the sandbox kernel's streams.

ipykernel sends a forked child's ``print`` to the parent through a new ZMQ connection per
message, which the parent's IO thread reads whenever it gets to it; a parent that joins
the child and prints can get its own line out first (``'child 1parent done\\n\\n'``, 4 runs
in 100 measured; 1 in 100 for a local ipykernel). Here each child (``multiprocessing``
with fork, ``os.fork``) writes its stream text into a pipe of its own instead, with a
blocking ``write``: when the child has exited its output is in the pipe. Before the parent
sends any output of its own it drains every child pipe, so whatever a joined child wrote
comes first. The pipes are also read as data arrives, so a long-lived child streams.

A record is one ``os.write`` of at most ``PIPE_BUF`` bytes (atomic, so a grandchild
writing into the same inherited pipe never splits one): a stream byte (``0`` stdout, ``1``
stderr), a 2-byte big-endian length, then that many bytes of UTF-8 text.

Pure framing at the top (:func:`records`, :func:`parse`), the fork plumbing below.
"""

from __future__ import annotations

import os
import select
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

#: Largest atomic pipe write on Linux (POSIX guarantees at least 512).
PIPE_BUF = select.PIPE_BUF
_HEADER = struct.Struct(">BH")
#: Characters per record: four UTF-8 bytes each at most, plus the header, fit PIPE_BUF.
_CHARS = (PIPE_BUF - _HEADER.size) // 4
NAMES = ("stdout", "stderr")


def records(name: str, text: str) -> Iterator[bytes]:
    """``text`` of stream ``name`` as pipe records.

    Example:
        >>> list(records("stderr", "hi"))
        [b'\\x01\\x00\\x02hi']
    """
    kind = NAMES.index(name)
    for start in range(0, len(text), _CHARS):
        data = text[start : start + _CHARS].encode("utf-8", "surrogatepass")
        yield _HEADER.pack(kind, len(data)) + data


def parse(buffer: bytearray) -> list[tuple[str, str]]:
    """The whole records at the front of ``buffer`` as ``(name, text)``, consecutive
    records of one stream joined; what they took is removed from ``buffer``.

    Example:
        >>> b = bytearray(b"\\x00\\x00\\x02a\\n\\x00\\x00\\x01b\\x01\\x00")
        >>> parse(b), bytes(b)
        ([('stdout', 'a\\nb')], b'\\x01\\x00')
    """
    out: list[tuple[str, str]] = []
    at = 0
    while len(buffer) - at >= _HEADER.size:
        kind, size = _HEADER.unpack_from(buffer, at)
        if len(buffer) - at - _HEADER.size < size:
            break
        start = at + _HEADER.size
        text = bytes(buffer[start : start + size]).decode("utf-8", "surrogatepass")
        name = NAMES[kind] if kind < len(NAMES) else "stderr"
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + text)
        else:
            out.append((name, text))
        at = start + size
    del buffer[:at]
    return out


@dataclass
class _Pipe:
    fd: int
    parents: dict[str, dict]  # stream name → the parent header current when the child forked
    pending: bytearray = field(default_factory=bytearray)


#: Sends ``(name, text, parent_header)`` as a stream message now (on the IO thread).
Send = Callable[[str, str, dict], None]


class ForkedOutput:
    """The pipes of this process's forked children, and the child side of one.

    Args:
        send: sends a child's text as a stream message (called on the IO thread).
        streams: the current stdout and stderr ``OutStream`` objects, by name.
        watch: asks for :meth:`readable` to be called on the IO thread whenever ``fd``
            has data (called on the forking thread).
        unwatch: the opposite, called on the IO thread just before ``fd`` is closed.
    """

    def __init__(
        self,
        send: Send,
        streams: Callable[[], dict],
        watch: Callable[[int], None],
        unwatch: Callable[[int], None],
    ) -> None:
        self._send = send
        self._streams = streams
        self._watch = watch
        self._unwatch = unwatch
        self._pipes: dict[int, _Pipe] = {}
        self._lock = threading.Lock()
        self._fork_pipe: tuple[int, int] | None = None
        self._parents: dict[str, dict] = {}
        #: in a child: the pipe it writes its output to (None in the kernel's own process)
        self.child_fd: int | None = None

    def install(self) -> None:
        os.register_at_fork(
            before=self._before, after_in_parent=self._after_parent, after_in_child=self._after_child
        )

    # -- the fork ------------------------------------------------------------------------

    def _before(self) -> None:
        if self.child_fd is not None:
            return  # a grandchild writes into the pipe its parent inherited
        if self._fork_pipe is not None:  # the last fork failed (e.g. RLIMIT_NPROC)
            for fd in self._fork_pipe:
                os.close(fd)
        read, write = os.pipe()
        self._fork_pipe = (read, write)
        self._parents = {name: dict(s.parent_header) for name, s in self._streams().items()}

    def _after_parent(self) -> None:
        if self._fork_pipe is None:
            return
        read, write = self._fork_pipe
        self._fork_pipe = None
        os.close(write)
        os.set_blocking(read, False)
        with self._lock:
            self._pipes[read] = _Pipe(read, self._parents)
        self._watch(read)

    def _after_child(self) -> None:
        if self._fork_pipe is None:
            return
        read, write = self._fork_pipe
        self._fork_pipe = None
        os.close(read)
        with self._lock:
            for pipe in self._pipes.values():  # the parent's other children's pipes
                try:
                    os.close(pipe.fd)
                except OSError:
                    pass
            self._pipes.clear()
        self.child_fd = write

    # -- the child -------------------------------------------------------------------------

    def write(self, name: str, text: str) -> bool:
        """In a child: send ``text`` to the parent now; False if this process has no pipe."""
        if self.child_fd is None:
            return False
        try:
            for record in records(name, text):
                os.write(self.child_fd, record)
        except OSError:  # the kernel is gone: nobody is left to show it to
            pass
        return True

    # -- the parent ------------------------------------------------------------------------

    def has(self, fd: int) -> bool:
        """Whether ``fd`` is the open read end of a child's pipe."""
        with self._lock:
            return fd in self._pipes

    def drain(self) -> None:
        """Send everything the children wrote so far (on the IO thread)."""
        if not self._pipes:
            return
        with self._lock:
            pipes = list(self._pipes.values())
        for pipe in pipes:
            self._read(pipe)

    def readable(self, fd: int) -> None:
        """Send what the child of ``fd`` wrote so far (on the IO thread)."""
        with self._lock:
            pipe = self._pipes.get(fd)
        if pipe is not None:
            self._read(pipe)

    def _read(self, pipe: _Pipe) -> None:
        ended = False
        while True:
            try:
                chunk = os.read(pipe.fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                ended = True
                break
            if not chunk:
                ended = True
                break
            pipe.pending += chunk
        for name, text in parse(pipe.pending):
            self._send(name, text, pipe.parents.get(name, {}))
        if ended:
            with self._lock:
                self._pipes.pop(pipe.fd, None)
            self._unwatch(pipe.fd)
            os.close(pipe.fd)
