"""Entry point of a sandbox's IPython kernel process.

Started as ``python -m hopx_kernel.server.kernel_launcher -f <connection file>``. Before
handing over to ``IPKernelApp`` it:

- applies resource caps passed by the server in ``HOPX_LOCAL_MEMORY_LIMIT_MB`` and
  ``HOPX_LOCAL_MAX_PROCS`` (``RLIMIT_AS`` / ``RLIMIT_NPROC``), then removes those
  variables and every Jupyter session variable from ``os.environ``;
- makes output prompt: ipykernel batches stream output for 200 ms, which would make
  the first line of ``print('x'); time.sleep(1)`` arrive late; here it is 5 ms;
- keeps stdout/stderr order across the two streams: a write to one stream first sends
  whatever the other stream still buffers.
"""

from __future__ import annotations

import os
import sys

MEMORY_ENV = "HOPX_LOCAL_MEMORY_LIMIT_MB"
NPROC_ENV = "HOPX_LOCAL_MAX_PROCS"
FLUSH_INTERVAL = 0.005


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


def _patch_streams() -> None:
    from ipykernel.iostream import OutStream

    OutStream.flush_interval = FLUSH_INTERVAL
    original_write = OutStream.write

    def ordered_write(self: OutStream, string: str) -> int | None:
        other = sys.stderr if self.name == "stdout" else sys.stdout
        if other is not self and isinstance(other, OutStream) and other._flush_pending:
            other.flush()
        return original_write(self, string)

    OutStream.write = ordered_write  # type: ignore[method-assign]


def _drop_session_vars() -> None:
    for name in list(os.environ):
        if name.upper().startswith(("JPY_", "IPY_")):
            del os.environ[name]


def main() -> None:
    """Apply limits and patches, then run ``IPKernelApp``."""
    _apply_limits()
    _patch_streams()
    from ipykernel import kernelapp  # reads JPY_PARENT_PID for its parent poller

    app = kernelapp.IPKernelApp.instance()
    app.initialize(sys.argv[1:] + ["--IPythonKernel._execute_sleep=0", "--IPKernelApp.log_level=ERROR",
                                   "--IPCompleter.use_jedi=False"])
    _drop_session_vars()
    app.start()


if __name__ == "__main__":
    main()
