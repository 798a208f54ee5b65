"""``hopx-kernel serve``: run the local sandbox server until told to stop.

When ready it prints exactly one JSON line to stdout,
``{"base_url": "http://127.0.0.1:PORT", "api_key": "..."}``, and logs only to stderr
(never a token). SIGTERM or SIGINT, or the end of ``--parent-pid``, ends every
sandbox, removes the folders and exits 0.

Example:
    $ python -m hopx_kernel.server --port 0 --parent-pid $$
    {"base_url": "http://127.0.0.1:40123", "api_key": "..."}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import ssl
import sys
import tempfile
import time
from pathlib import Path

import psutil
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..loopback import listen_url
from .domain import handoff
from .domain.environment import sandbox_env
from .domain.execution import Context
from .domain.pool import KernelPool
from .domain.sandbox import MAX_SANDBOXES, Registry
from .domain.tokens import new_token
from .runtime import confinement, jedi_cache
from .runtime.ipython import IPythonRunner
from .runtime.run_control import Limits
from .web import auth
from .web.app import MAX_BODY, ServerState, make_app

log = logging.getLogger("hopx_kernel.server")
#: Seconds between checks that ``--parent-pid`` still lives.
PARENT_POLL = 0.5
#: Seconds a connection may sit without a request (and headers may take to arrive).
IDLE_TIMEOUT = 60.0
#: Seconds a request body (an upload of up to MAX_BODY) may take to arrive.
BODY_TIMEOUT = 300.0
PR_SET_DUMPABLE = 4


def hide_initial_environment() -> bool:
    """Zero this process's initial environment block, which ``/proc/<pid>/environ`` shows.

    Python keeps its own copy (``os.environ``), copied back into the C environment here.
    Sandbox code can read ``environ`` of processes of the same user (Landlock does not stop
    that read, and for root neither does non-dumpability), and it may hold the user's keys.
    True on success.
    """
    import ctypes

    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end: fields 50, 51
        if not 0 < start < end:
            return False
        ctypes.memset(start, 0, end - start)
    except (OSError, ValueError, IndexError):
        return False
    for name, value in os.environ.items():
        os.putenv(name, value)
    return True


def make_undumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)``: processes of the same user (sandbox code) can no longer
    read this server's ``/proc/<pid>/environ`` or memory, nor ptrace it. True on success."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def build_parser() -> argparse.ArgumentParser:
    """The ``serve`` command line."""
    p = argparse.ArgumentParser(
        prog="hopx-kernel serve", description="Run the local HopX-compatible sandbox server."
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    p.add_argument("--token", default=None, help="API key to require (default: random)")
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process ends")
    p.add_argument(
        "--handoff-grace",
        type=float,
        default=handoff.GRACE,
        help="seconds a server its --parent-pid offered at a restart waits for the next "
        f"kernel process to adopt it (default {handoff.GRACE:g})",
    )
    p.add_argument("--root", default=None, help="folder for sandbox folders (default: temp)")
    p.add_argument(
        "--remove-root",
        action="store_true",
        help="remove --root on exit, also when --parent-pid ended (embedded mode)",
    )
    p.add_argument("--pool-size", type=int, default=1, help="warm IPython kernels to keep")
    p.add_argument(
        "--no-pool-refill",
        dest="pool_refill",
        action="store_false",
        help="start the --pool-size kernels once and do not replace those taken "
        "(embedded mode: its one sandbox is made at once, and a spare kernel "
        "would only cost memory until the kernel ends)",
    )
    p.add_argument(
        "--memory-limit-mb", type=int, default=None, help="address-space cap per sandbox process (RLIMIT_AS)"
    )
    p.add_argument("--max-procs", type=int, default=None, help="process cap per sandbox user (RLIMIT_NPROC)")
    p.add_argument(
        "--max-sandboxes",
        type=int,
        default=MAX_SANDBOXES,
        help=f"live sandboxes at most; more creates answer 429 (default {MAX_SANDBOXES})",
    )
    p.add_argument(
        "--client-timeout",
        type=float,
        default=60.0,
        help="seconds a stream client may read nothing (output or pings) before "
        "it is dropped and its execution stopped (default 60)",
    )
    p.add_argument(
        "--token-ttl",
        type=float,
        default=24 * 3600.0,
        help="seconds an agent token stays valid (default 24 h)",
    )
    p.add_argument(
        "--public-url",
        default=None,
        help="agent URL to advertise as public_host/direct_url (default: the "
        "server's own base_url), e.g. a loopback proxy in front of it",
    )
    p.add_argument(
        "--tls-cert",
        default=None,
        help="PEM certificate (chain) to serve https/wss with (testing); needs --tls-key",
    )
    p.add_argument("--tls-key", default=None, help="PEM private key for --tls-cert")
    p.add_argument(
        "--stream-idle-timeout",
        type=float,
        default=120.0,
        help="seconds a reused /execute/stream socket may stay idle (default 120)",
    )
    p.add_argument(
        "--no-stream-reuse",
        action="store_true",
        help="one execution per /execute/stream socket, as HopX documents it",
    )
    p.add_argument(
        "--no-extensions",
        dest="extensions",
        action="store_false",
        help="testing: behave as a plain HopX agent (no stream extensions "
        'advertised; "extensions": 1 in an execute frame is ignored)',
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error", "critical"])
    return p


def parent_alive(parent_pid: int, original_ppid: int) -> bool:
    """Whether ``parent_pid`` still runs and we were not re-parented."""
    if os.getppid() != original_ppid and original_ppid == parent_pid:
        return False
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # an adopted parent (a restart) is not ours: once killed it may stay a zombie until
    # the process that started it reaps it, and a zombie has ended
    try:
        return psutil.Process(parent_pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def serve(args: argparse.Namespace) -> int:
    """Run until a signal or the parent's end; returns the exit status."""
    hide_initial_environment()
    if not make_undumpable():
        log.warning(
            "could not mark the server non-dumpable (prctl); sandbox code running as "
            "the same user may read its environment and memory"
        )
    made_root = args.root is None
    root = Path(args.root or tempfile.mkdtemp(prefix="hopx-local-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    runtime = root / ".kernels"  # connection files, beside (not inside) the sandbox folders
    runtime.mkdir(mode=0o700, exist_ok=True)
    limits = Limits(args.memory_limit_mb, args.max_procs)
    base_env = sandbox_env(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])
    kernel_env = dict(base_env)
    if package_parent not in kernel_env.get("PYTHONPATH", "").split(os.pathsep):
        kernel_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, kernel_env.get("PYTHONPATH")) if p
        )

    # once per machine (~2 s, before anything listens): every sandbox's first Tab is fast
    completer_cache = jedi_cache.ensure()
    if completer_cache is not None:
        kernel_env[jedi_cache.ENV] = str(completer_cache)
    abi = confinement.abi_version()
    extra_read = [package_parent] + ([str(completer_cache)] if completer_cache else [])
    read_paths = confinement.read_paths(root, extra_read) if abi else None
    if abi:
        log.info("sandboxes are confined with Landlock (ABI %d)", abi)
    else:
        log.warning(
            "Landlock is not available on this kernel (Linux >= 5.13 with Landlock "
            "enabled): sandboxes are NOT confined; their code can read and change "
            "each other's folders and files of this user"
        )
    pool = KernelPool(
        root,
        args.pool_size,
        lambda folder: IPythonRunner(folder, kernel_env, runtime, limits, read_paths),
        refill=args.pool_refill,
    )
    registry = Registry(pool, token_ttl=args.token_ttl, max_sandboxes=args.max_sandboxes)
    state = ServerState(
        api_key=args.token or new_token(),
        registry=registry,
        ctx=Context(registry, base_env, limits, confined_abi=abi),
        extensions=args.extensions,
    )
    state.pool = pool
    if args.parent_pid:
        state.handoff = handoff.Handoff(args.parent_pid, grace=args.handoff_grace)
    state.stream_reuse = not args.no_stream_reuse
    state.client_timeout = args.client_timeout
    state.stream_idle_timeout = args.stream_idle_timeout
    tls = tls_context(args.tls_cert, args.tls_key)
    scheme = "https" if tls is not None else "http"
    sockets = bind_sockets(args.port, args.host)
    port = sockets[0].getsockname()[1]
    # the address it listens on: --host ::1 is http://[::1]:PORT (127.0.0.1 is not bound then)
    state.base_url = listen_url(scheme, args.host, port)
    state.public_url = (args.public_url or state.base_url).rstrip("/")
    server = HTTPServer(make_app(state), max_body_size=MAX_BODY, xheaders=False, ssl_options=tls)
    server.add_sockets(sockets)
    pool.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    watcher = None
    if state.handoff is not None:
        watcher = loop.create_task(_watch_parent(state.handoff, stop))

    print(json.dumps({"base_url": state.base_url, "api_key": state.api_key}), flush=True)
    log.info("local sandbox server listening on %s (root %s)", state.base_url, root)
    await stop.wait()
    log.info("stopping: ending every sandbox")
    server.stop()
    if watcher is not None:
        watcher.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(registry.end_all(), pool.close()), 20)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.close_all_connections(), 2)
    shutil.rmtree(runtime, ignore_errors=True)
    note = state.handoff.unclaimed_note() if state.handoff is not None else None
    if note is not None:
        note.unlink(missing_ok=True)  # offered at a restart, never adopted: no key left behind
    if made_root or args.remove_root:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server's TLS context for ``--tls-cert/--tls-key`` (None: plain http)."""
    if cert is None or key is None:  # (parse_args has made sure they come together)
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def _watch_parent(parent: handoff.Handoff, stop: asyncio.Event) -> None:
    """Stop when the parent ends, unless it offered the server to a successor that adopts
    it within the grace (a kernel restart); then live for the successor."""
    original_ppid = os.getppid()
    while not stop.is_set():
        pid = parent.parent_pid
        alive = pid is not None and parent_alive(pid, original_ppid)
        if not parent.keep_running(alive, time.monotonic()):
            log.info("parent process %s ended; stopping", pid)
            stop.set()
            return
        await asyncio.sleep(PARENT_POLL)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hopx-kernel serve``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if not auth.is_loopback_bind(args.host):
        print(
            f"hopx-kernel serve: --host {args.host!r} is not a loopback address; the local "
            "sandbox only listens on 127.0.0.1 (or localhost, ::1)",
            file=sys.stderr,
        )
        return 2
    if args.public_url is not None and not auth.is_loopback_origin(args.public_url):
        print(
            f"hopx-kernel serve: --public-url {args.public_url!r} must be an http(s) URL on loopback",
            file=sys.stderr,
        )
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("hopx-kernel serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not os.path.isfile(path):
            print(f"hopx-kernel serve: cannot read {path!r} (--tls-cert/--tls-key)", file=sys.stderr)
            return 2
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # requests answered 4xx (a missing file, an expired sandbox) reach the client as its
    # error; the access log shows them at info level and below, never in a quiet (embedded) run
    quiet = logging.getLevelName(args.log_level.upper()) >= logging.WARNING
    logging.getLogger("tornado.access").setLevel(logging.ERROR if quiet else logging.WARNING)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
