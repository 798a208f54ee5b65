"""``HopxKernel``: the "HopX Remote Python" Jupyter kernel.

Thin async ``do_*`` adapters: frame parsing lives in :mod:`.frames`, frame → message
mapping in :mod:`.mapping`, the sandbox behind :class:`.session.SandboxSession`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path

import zmq
from ipykernel._version import kernel_protocol_version
from ipykernel.kernelbase import Kernel
from jupyter_client.session import Session
from traitlets import Float

from . import __version__, wire
from .comms import CommBridge
from .completion import complete_locally, is_complete
from .config import Config, from_env
from .errors import ConfigError, HopxKernelError, SandboxDisconnected
from .frames import Display, Execute, InputReply, Interrupt, Jupyter
from .magics import MagicError, parse_magic, run_magic
from .mapping import LOST_CODES, CellMapper, coalesce, jupyter_safe
from .restart_handoff import handoff_path
from .session import SandboxSession
from .text import packed_content

LANGUAGE_INFO: dict[str, object] = {
    "name": "python",
    "version": "3",
    "mimetype": "text/x-python",
    "file_extension": ".py",
    "pygments_lexer": "ipython3",
    "codemirror_mode": {"name": "ipython", "version": 3},
    "nbconvert_exporter": "python",
}

STATELESS_NOTE = (
    "note: this sandbox does not keep variables between cells (each cell starts afresh);"
    " keep each cell self-contained.\n"
)

#: How long a debug request waits for the first sandbox, to know whether it has a debugger.
FIRST_SANDBOX_WAIT = 10.0
#: Seconds the kernel channel waits for the first sandbox to open early (then the first cell opens it).
CHANNEL_EARLY_WAIT = 120.0
#: Whether an embedded sandbox offers the debugger (its agent's rule: debugpy importable).
EMBEDDED_DEBUGGER = importlib.util.find_spec("debugpy") is not None
#: How long a debug request waits for the sandbox's debugger.
DEBUG_WAIT = 30.0

#: How long completion and inspection may wait on the sandbox before answering locally
#: (the agent itself answers within 2 s while a cell runs, 10 s when idle: Jedi's first use).
ASSIST_TIMEOUT = 10.0


def _setup_logging(level: str) -> None:
    """Our log lines go to the real stderr (the Jupyter server's log), never to a cell."""
    logger = logging.getLogger("hopx_kernel")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.__stderr__)
        handler.setFormatter(logging.Formatter("[hopx-kernel %(levelname)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


class HopxKernel(Kernel):
    """Runs every cell in a HopX sandbox and streams its output back as it is produced."""

    implementation = "hopx-kernel"
    implementation_version = __version__
    language = "python"
    language_info = LANGUAGE_INFO
    banner = "HopX Remote Python: each cell runs in a HopX sandbox (%hopx for details)"
    help_links = [{"text": "hopx-kernel README", "url": "https://github.com/hopx-ai/hopx"}]
    #: ipykernel sleeps 0.5 ms before every reply to let its own captured output drain;
    #: this kernel publishes everything itself, in order, before replying.
    _execute_sleep = Float(0.0)

    @property
    def _session(self) -> Session:
        """ipykernel's message session: a trait that may be None until the kernel app sets
        it, which it always does before any message arrives."""
        session = self.session
        if session is None:
            raise RuntimeError("the kernel has no Jupyter session (not started by a kernel app)")
        return session

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        try:
            config, error = from_env(os.environ), None
        except ConfigError as exc:  # reported as every cell's error, so the user sees it
            config, error = Config(), exc
        _setup_logging(config.log_level)
        self.sandbox = SandboxSession(config, error=error)
        self._display_ids: set[str] = set()
        self._history: list[tuple[int, str]] = []
        self._execution = None  # the running cell's Execution
        self._cell_parent: dict = {}
        self._request_parent: dict | None = None  # the execute_request being handled
        self._cell_task: asyncio.Task | None = None
        self._interrupted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned_stateless = False
        self._closing: set[asyncio.Future] = set()
        self._published = wire.RecentIds()
        self.comms = CommBridge(self.sandbox, self._publish_msg, self._publish)
        # comm messages go to the sandbox (ipykernel 7 dispatches these even while a cell
        # runs); without these handlers the base class logs "Unknown message type"
        for msg_type in ("comm_open", "comm_msg", "comm_close"):
            self.shell_handlers[msg_type] = self._comm_message

    @property
    def kernel_info(self) -> dict:
        # ipykernel's kernel_info imports ipykernel.debugger just to ask whether debugpy is
        # importable: that import costs ~0.1 s and prints four "frozen modules" warnings.
        # This process runs no user code, so there is nothing in it to debug. Subshells are
        # not offered either: a cell on a subshell thread would run off the loop that owns
        # the sandbox's sockets, so they do not work end to end (create is refused below).
        return {
            "protocol_version": kernel_protocol_version,
            "implementation": self.implementation,
            "implementation_version": self.implementation_version,
            "language_info": self.language_info,
            "banner": self.banner,
            "help_links": self.help_links,
            # the debugger runs in the sandbox's kernel, reached over the kernel channel
            "supported_features": ["debugger"] if self._offers_debugger() else [],
        }

    def _offers_debugger(self) -> bool:
        """Whether the sandbox has a debugger. kernel_info never waits for the sandbox: its
        reply starts jupyter_client's 0.2 s of IOPub quiet before a frontend sends the first
        cell, which would then come after the create instead of under it. Before the first
        sandbox is ready, an embedded one is known anyway: it is this package's server on
        this Python, whose agent offers the debugger exactly when debugpy is importable
        (server/web/agent_plane.py). A cloud one is not known yet, so the debugger is not
        offered until it is (a debug_request waits for it: _first_sandbox)."""
        if not self.sandbox.is_live and self.sandbox.embedded:
            return EMBEDDED_DEBUGGER
        return self.sandbox.has_debugger

    async def _on_main_loop(self, coro):
        """Run ``coro`` on the loop that owns the sandbox's sockets (control handlers run
        on ipykernel's control thread, with a loop of their own)."""
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))
        return await coro

    async def _first_sandbox(self) -> None:
        """Wait (bounded, never raising) for the first sandbox, on the loop that owns it
        (debug requests come on ipykernel's control thread; before the main loop has
        started the sandbox, there is nothing yet to wait on from there)."""
        if self._loop is not None:
            await self._on_main_loop(self.sandbox.settled(FIRST_SANDBOX_WAIT))

    async def create_subshell_request(self, socket, ident, parent):
        content = {
            "status": "error",
            "ename": "SubshellsUnsupported",
            "evalue": "HopX Remote Python does not support kernel subshells",
            "traceback": [],
        }
        self._session.send(socket, "create_subshell_reply", content, parent, ident)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self):
        super().start()
        self.io_loop.add_callback(self._started)

    def _started(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.sandbox.start()
        task = asyncio.ensure_future(self._open_channel_early())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _open_channel_early(self) -> None:
        """Open the kernel channel as soon as the first sandbox is ready, so the first
        cell does not wait for its WebSocket (1 RTT, 2 with TLS); a cell that comes sooner
        waits for this same opening (CommBridge.channel holds a lock)."""
        await self.sandbox.settled(CHANNEL_EARLY_WAIT)  # never raises: a failure is the first cell's
        try:
            if self.sandbox.uses_channel:
                await self.comms.channel()
        except HopxKernelError as exc:  # the first cell reports it (or opens the channel)
            self.log.debug("hopx-kernel: the kernel channel did not open early: %s", exc.line())

    async def do_shutdown(self, restart):
        # ipykernel 7 handles shutdown_request on the control thread's own event loop; the
        # sandbox's sockets and tasks live on the main loop, so do the work there.
        # A restart hands the embedded server over to the next kernel process (restart_handoff).
        handoff = self._handoff_path() if restart else None
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            done = asyncio.run_coroutine_threadsafe(self.sandbox.shutdown(handoff), self._loop)
            await asyncio.wrap_future(done)
        else:
            await self.sandbox.shutdown(handoff)
        return {"status": "ok", "restart": restart}

    def _handoff_path(self) -> Path | None:
        connection_file = getattr(self.parent, "abs_connection_file", None)
        return handoff_path(connection_file) if isinstance(connection_file, str) and connection_file else None

    # -- interrupt: SIGINT (signal mode, and message mode via ipykernel) ---------------------

    def pre_handler_hook(self):
        self.saved_sigint_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._interrupt)

    def _interrupt(self) -> None:
        """Stop the running cell: the [ext] interrupt frame, else close its socket."""
        self._interrupted = True
        execution = self._execution
        if execution is not None:
            execution.interrupted = True
            if self.sandbox.has_extensions:
                asyncio.ensure_future(execution.send(Interrupt()))
            else:
                asyncio.ensure_future(execution.abort())
        elif self._cell_task is not None:
            self._cell_task.cancel()  # still waiting for the sandbox or for input

    # -- execute -------------------------------------------------------------------------

    def _publish(self, msg_type: str, content: dict) -> None:
        # agent-supplied text may hold lone surrogates: unsendable, the packer would raise
        packed = packed_content(msg_type, jupyter_safe(content))
        if self._cell_task is not None and self._cell_parent:  # a cell's: under the cell
            self._session.send(self.iopub_socket, msg_type, packed, self._cell_parent)  # type: ignore[arg-type]  # (bytes: sent as it is)
        else:
            self.send_response(self.iopub_socket, msg_type, packed)

    async def execute_request(self, stream, ident, parent):
        # ipykernel 7 runs every shell handler in one shared context, and a comm message it
        # handles concurrently with another (it does while the shell is busy) sets back the
        # parent it saw when it began once it ends: the parent of a cell that started in
        # between became that comm message, so its output and its idle went under the comm
        # message and a frontend waited for the cell's idle for ever (a frontend sending
        # comm messages as a cell is started). The cell keeps its own parent: its output
        # names it, and it is set again just before ipykernel publishes the idle.
        self._request_parent = parent
        try:
            await super().execute_request(stream, ident, parent)
        finally:
            self._request_parent = None
            self.set_parent(ident, parent, channel="shell")

    def _as_ours(self, header: dict) -> dict:
        """A sandbox message's header under this kernel's session: JupyterLab drops comm
        messages whose ``header.session`` is not the kernel's (it takes them for messages
        of a previous kernel). msg_id, msg_type, date and version are kept."""
        return dict(header, session=self._session.session, username=self._session.username)

    def _publish_msg(self, msg: dict, buffers: list) -> None:
        """Publish a sandbox's Jupyter message on iopub as it is (header kept but for its
        session, :meth:`_as_ours`), once: a msg_id already published is a replay, which
        frontends refuse ("Duplicate Signature") and an agent should never send."""
        msg_id = msg["header"].get("msg_id")
        if msg_id and not self._published.first(str(msg_id)):
            self.log.warning("hopx-kernel: skipped a sandbox message sent twice (msg_id %s)", msg_id)
            return
        out = {
            "header": self._as_ours(msg["header"]),
            "parent_header": msg.get("parent_header") or {},
            "metadata": msg.get("metadata") or {},
            "content": jupyter_safe(msg.get("content") or {}),
        }
        try:
            self._session.send(self.iopub_socket, out, buffers=list(buffers) or None)
        except (TypeError, ValueError):
            self.log.warning("hopx-kernel: skipped a sandbox message it could not send")

    # -- comms, comm_info, debugger: passed to the sandbox's kernel ------------------------

    async def _comm_message(self, stream, ident, parent):
        # wait for the sandbox to handle it only when no cell runs (a running sandbox
        # cell would hold it up); then what it publishes in response precedes our idle
        waited = self._execution is None and self._cell_task is None
        await self.comms.forward(parent, wait_handled=waited)

    async def comm_info_request(self, stream, ident, parent):
        answer = await self.comms.request("shell", parent)
        if answer is not None:
            msg, buffers = answer
            msg = dict(msg, header=self._as_ours(msg["header"]))
            self._session.send(stream, msg, ident=ident, buffers=buffers or None)
            return
        self._session.send(stream, "comm_info_reply", {"status": "ok", "comms": {}}, parent, ident)

    async def debug_request(self, stream, ident, parent):
        # kernel_info does not wait for an embedded sandbox: a debugger that attaches at
        # once (JupyterLab's debugInfo on connect) waits for it here
        await self._first_sandbox()
        if self.sandbox.has_debugger:
            answer = await self._on_main_loop(self.comms.request("control", parent, DEBUG_WAIT))
            if answer is not None:
                msg, buffers = answer
                msg = dict(msg, header=self._as_ours(msg["header"]))
                self._session.send(stream, msg, ident=ident, buffers=buffers or None)
                return
        content = parent.get("content") or {}
        reply = {
            "type": "response",
            "request_seq": content.get("seq", 0),
            "success": False,
            "command": content.get("command", ""),
            "message": "the debugger is not available: this sandbox has no kernel channel"
            if not self.sandbox.has_debugger
            else "the sandbox's debugger did not answer",
            "body": {},
        }
        self._session.send(stream, "debug_reply", reply, parent, ident)

    async def do_execute(
        self,
        code,
        silent,
        store_history=True,
        user_expressions=None,
        allow_stdin=False,
        *,
        cell_meta=None,
        cell_id=None,
    ):
        if store_history:
            self._history.append((self.execution_count, code))
        mapper = CellMapper(self.execution_count, self._display_ids, lost_hint=self.sandbox.lost_hint)
        self._cell_parent = self._request_parent or self.get_parent("shell")
        publish = (lambda t, c: None) if silent else self._publish
        self._interrupted = False
        self._cell_task = asyncio.current_task()
        try:
            magic = parse_magic(code)
            if magic is not None and magic.local:
                await run_magic(magic, self, publish)
                return jupyter_safe(mapper.finish())
            language = magic.language if magic is not None else "python"
            body = magic.body if magic is not None else code
            await self._run(mapper, publish, body, language, allow_stdin, silent)
        except MagicError as exc:
            for msg in mapper.fail("UsageError", str(exc)):
                publish(*msg)
        except asyncio.CancelledError:
            for msg in mapper.fail("KeyboardInterrupt", "interrupted before the cell started running"):
                publish(*msg)
        except HopxKernelError as exc:
            for msg in mapper.fail(exc.ename, exc.line()):
                publish(*msg)
        except Exception as exc:  # a bug of ours: still answer, so no frontend waits forever
            self.log.exception("hopx-kernel failed while running a cell")
            text = f"hopx-kernel hit an internal error ({exc.__class__.__name__}: {exc}). Run the cell again; if it persists, restart the kernel and report it."
            for msg in mapper.fail("HopxInternalError", " ".join(text.split())):
                publish(*msg)
        finally:
            self._cell_task = None
        return jupyter_safe(mapper.finish())

    async def _run(
        self, mapper: CellMapper, publish, code: str, language: str, allow_stdin: bool, silent: bool = False
    ):
        cfg = self.sandbox.config
        await self.sandbox.ready()
        ext = self.sandbox.has_extensions
        channel_seq = None
        if self.sandbox.uses_channel:
            # open before the cell runs, so updates its threads send later have a way out
            try:
                await self.comms.channel()
            except HopxKernelError as exc:
                self.log.warning("hopx-kernel: %s", exc.line())
            channel_seq = self.comms.last_seq
        frame = Execute(
            code=code,
            language=language,
            timeout=cfg.exec_timeout,
            workdir=cfg.workdir,
            env=cfg.env,
            allow_stdin=allow_stdin and ext,
            extensions=ext,
            msg_id=(self._cell_parent.get("header") or {}).get("msg_id") if ext else None,
            channel_seq=channel_seq,
            # [ext] the sandbox numbers the cell as the notebook does (a local magic or a
            # replaced sandbox does not shift it) and sends execute_result in its own order
            execution_count=mapper.execution_count if ext and not silent else None,
        )
        execution = await self.sandbox.open_execution(frame)
        self._execution = execution
        if self.sandbox.stateful is False and not self._warned_stateless:
            self._warned_stateless = True
            publish("stream", {"name": "stderr", "text": STATELESS_NOTE})
        if self._interrupted:  # interrupted while connecting
            self._interrupt()
        try:
            async for batch in execution.batches():
                for item in coalesce(batch):
                    if isinstance(item, Jupyter):
                        if not mapper.completed:
                            self.comms.from_cell(item, self._cell_parent)
                        continue
                    if isinstance(item, Display):
                        self.comms.note_display(item.data)
                    for msg_type, content in mapper.feed(item):
                        if msg_type == "input_request" and frame.allow_stdin:
                            value = await self._ask(content["prompt"], content["password"])
                            if value is not None:  # None: interrupted, the agent was told
                                await execution.send(InputReply(value))
                        elif msg_type == "input_request":
                            # the agent was told this cell cannot answer (no allow_stdin), and
                            # asked anyway: do not wait for a frontend that cannot answer
                            await self._refuse_input(execution, mapper, publish, allow_stdin)
                        else:
                            publish(msg_type, content)
            if mapper.agent_error_code in LOST_CODES:
                # ended under the running cell (the agent's error, with the hint, said so):
                # the next cell must not fail on a 410 too
                self.sandbox.lost()
        except SandboxDisconnected as exc:
            if execution.interrupted:
                how = "the connection was closed to stop it"
                if not ext:  # what the agent could do when the cell began (a shutdown drops the sandbox)
                    how += " (this agent cannot interrupt code, so it may still be running remotely)"
                for msg in mapper.fail("KeyboardInterrupt", f"interrupted: {how}"):
                    publish(*msg)
            else:
                for msg in mapper.fail(exc.ename, exc.line()):
                    publish(*msg)
        finally:
            self._execution = None
            # the cell's outcome is known: close the socket without holding up the reply
            closing = asyncio.ensure_future(execution.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            self.sandbox.prepare_next()

    async def _refuse_input(self, execution, mapper: CellMapper, publish, allow_stdin: bool) -> None:
        """An ``input_request`` this cell cannot answer: fail the cell as ipykernel does,
        and (if the agent speaks the extension) answer empty so it does not wait either."""
        if self.sandbox.has_extensions:
            await execution.send(InputReply(""))
        why = (
            "this frontend does not support input requests"
            if not allow_stdin
            else ("this sandbox's agent does not support input (no stream extensions)")
        )
        for msg in mapper.fail("StdinNotImplementedError", f"the code asked for input, but {why}"):
            publish(*msg)

    async def _ask(self, prompt: str, password: bool) -> str | None:
        """Send a Jupyter ``input_request`` on stdin and wait for the reply.

        Returns ``None`` when the cell is interrupted meanwhile (the agent has already been
        sent the interrupt, or its socket closed); an answer then would be stale.
        """
        parent = self.get_parent("shell")
        ident = self._parent_ident["shell"]
        while True:  # drop stale replies
            try:
                self.stdin_socket.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError:
                break
        self._session.send(
            self.stdin_socket,
            "input_request",
            jupyter_safe({"prompt": prompt, "password": password}),
            parent,
            ident=ident,
        )
        while not self._interrupted:
            _, reply = self._session.recv(self.stdin_socket, zmq.NOBLOCK)
            if reply is not None:
                value = reply["content"].get("value", "")
                return "" if value == "\x04" else str(value)
            await asyncio.sleep(0.01)
        return None

    # -- assistance ----------------------------------------------------------------------

    async def do_complete(self, code, cursor_pos):
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        if self.sandbox.has_extensions:
            try:
                reply = await asyncio.wait_for(
                    self.sandbox.agent_call(
                        "POST",
                        "/complete",
                        body={"code": code, "cursor_pos": cursor_pos},
                        timeout=ASSIST_TIMEOUT,
                    ),
                    ASSIST_TIMEOUT + 0.5,
                )
                if (
                    isinstance(reply, dict)
                    and isinstance(reply.get("matches"), list)
                    and not reply.get("timed_out")
                ):
                    return {
                        "status": "ok",
                        "matches": reply["matches"],
                        "cursor_start": reply.get("cursor_start", cursor_pos),
                        "cursor_end": reply.get("cursor_end", cursor_pos),
                        "metadata": reply.get("metadata") or {},
                    }
            except (HopxKernelError, asyncio.TimeoutError):
                pass
        matches, start = complete_locally(code, cursor_pos, [c for _, c in self._history])
        return {
            "status": "ok",
            "matches": matches,
            "cursor_start": start,
            "cursor_end": cursor_pos,
            "metadata": {},
        }

    async def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        if self.sandbox.has_extensions:
            try:
                reply = await asyncio.wait_for(
                    self.sandbox.agent_call(
                        "POST",
                        "/inspect",
                        body={"code": code, "cursor_pos": cursor_pos, "detail_level": detail_level},
                        timeout=ASSIST_TIMEOUT,
                    ),
                    ASSIST_TIMEOUT + 0.5,
                )
                if isinstance(reply, dict) and reply.get("found"):
                    return {
                        "status": "ok",
                        "found": True,
                        "data": reply.get("data") or {},
                        "metadata": reply.get("metadata") or {},
                    }
            except (HopxKernelError, asyncio.TimeoutError):
                pass
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}

    async def do_is_complete(self, code):
        return is_complete(code)

    async def do_history(
        self,
        hist_access_type,
        output,
        raw,
        session=None,
        start=None,
        stop=None,
        n=None,
        pattern=None,
        unique=False,
    ):
        entries = [(0, count, code) for count, code in self._history]
        if hist_access_type == "tail" and n:
            entries = entries[-int(n) :]
        elif hist_access_type == "range":
            lo = start if start is not None else 0
            hi = stop if stop is not None else sys.maxsize
            entries = [e for e in entries if lo <= e[1] < hi]
        elif hist_access_type == "search" and pattern:
            import fnmatch

            entries = [e for e in entries if fnmatch.fnmatch(e[2], pattern)]
            if unique:
                seen: set[str] = set()
                kept = []
                for e in entries:
                    if e[2] not in seen:
                        seen.add(e[2])
                        kept.append(e)
                entries = kept
            if n:
                entries = entries[-int(n) :]
        if output:  # (input, output) pairs; the output is not kept
            return {"status": "ok", "history": [(s, c, (code, None)) for s, c, code in entries]}
        return {"status": "ok", "history": entries}
