"""Sandbox frames → Jupyter messages (docs/protocol.md §3). Pure: no sockets, no clocks.
The server side's :mod:`hopx_kernel.server.domain.to_frames` goes the other way.

A :class:`CellMapper` follows one cell: :meth:`~CellMapper.feed` turns each frame into
the iopub messages to publish now, and :meth:`~CellMapper.finish` gives the
``execute_reply`` content. A stream that ends badly is the kernel's to report
(:meth:`~CellMapper.fail`), not something ``finish`` makes up.

Rules kept here, in one place:
- stream text is passed through untouched (``\\r`` and unicode included);
- a cell reports at most one error: the first error frame or failing result wins, later
  ones are folded into it (a timeout's KeyboardInterrupt does not show twice);
- an agent without the structured-error extension gets its ``ename``/``evalue`` parsed
  from the last line of the traceback it wrote on stderr;
- a display whose ``transient.display_id`` was seen before becomes ``update_display_data``;
- :func:`jupyter_safe` makes agent-supplied content sendable as a Jupyter message.

Example:
    >>> m = CellMapper(execution_count=3)
    >>> m.feed(Stream("stdout", "hi\\n"))
    [('stream', {'name': 'stdout', 'text': 'hi\\n'})]
    >>> m.feed(Result(exit_code=0, data={"text/plain": "2"}))
    [('execute_result', {'execution_count': 3, 'data': {'text/plain': '2'}, 'metadata': {}})]
    >>> m.feed(Complete(True)); m.finish()["status"]
    []
    'ok'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .frames import (
    AgentError,
    AgentFrame,
    ClearOutput,
    Complete,
    Display,
    ExecuteResult,
    InputRequest,
    Result,
    Stream,
)
from .text import SURROGATE, strip_ansi

Message = tuple[str, dict]

#: How much recent stderr is kept for traceback parsing (agents without extensions).
STDERR_TAIL_CHARS = 64 * 1024
#: Coalesced stream messages stay below this many characters.
COALESCE_CHARS = 512 * 1024

_EXC_LINE = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning|Iteration|ExceptionGroup))(?::\s?(.*))?$"
)


def jupyter_safe(content: dict) -> dict:
    """``content`` made fit for a Jupyter message, which must be UTF-8 JSON.

    An agent's JSON may hold lone surrogates (``"\\ud800"``) and ``NaN``/``Infinity``,
    which Python's json reads but a message cannot carry: the packer raises on the
    former, and replaces the latter differently per packer. Lone surrogates become
    U+FFFD, non-finite numbers ``null`` (as JavaScript's JSON.stringify does). Returns
    ``content`` itself when it is already fine.

    Example:
        >>> jupyter_safe({"name": "stdout", "text": "a\\ud800"})
        {'name': 'stdout', 'text': 'a\ufffd'}
        >>> jupyter_safe({"data": {"x": float("nan")}})
        {'data': {'x': None}}
    """
    if content.keys() == {"name", "text"} and isinstance(content["text"], str):  # stream: hot path
        # isascii() is C speed; the regex scan cost 165 ms of the kernel's main thread per
        # 50 MiB of output (about a fifth of the cell)
        text = content["text"]
        if not text.isascii() and SURROGATE.search(text):
            return {"name": content["name"], "text": SURROGATE.sub("\ufffd", content["text"])}
        return content
    try:
        if not SURROGATE.search(json.dumps(content, ensure_ascii=False, allow_nan=False)):
            return content
    except ValueError:  # a non-finite number
        pass
    text = SURROGATE.sub("\ufffd", json.dumps(content, ensure_ascii=False))  # only inside strings
    return json.loads(text, parse_constant=lambda _: None)


@dataclass(frozen=True)
class ParsedTraceback:
    ename: str
    evalue: str
    traceback: list[str]


def parse_traceback(stderr: str) -> ParsedTraceback | None:
    """Find the last Python traceback in stderr text.

    Returns ``None`` when the text holds no recognisable exception line.

    Example:
        >>> t = parse_traceback("Traceback (most recent call last):\\n  File ...\\nNameError: x\\n")
        >>> (t.ename, t.evalue)
        ('NameError', 'x')
    """
    lines = strip_ansi(stderr).rstrip("\n").split("\n")
    group = _parse_group(lines)
    if group is not None:
        return group
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].rstrip()
        match = _EXC_LINE.match(line)
        if match:
            ename, evalue = match.group(1), match.group(2) or ""
            start = i
            for j in range(i, -1, -1):
                if lines[j].startswith("Traceback (most recent call last)"):
                    start = j
                    break
            return ParsedTraceback(ename.rsplit(".", 1)[-1], evalue, lines[start : i + 1])
        if line.strip():
            # the last non-empty line is not an exception line: look no further back than a
            # few lines, so ordinary stderr chatter is not mistaken for an error
            if len(lines) - i > 3:
                break
    return None


_GROUP_START = "Exception Group Traceback (most recent call last):"
_GROUP_LINE = re.compile(r"^\s*\| ((?:[A-Za-z_][\w.]*)?ExceptionGroup)(?::\s?(.*))?$")


def _parse_group(lines: list[str]) -> ParsedTraceback | None:
    """The last uncaught exception group, in CPython's boxed format, if there is one."""
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].strip().endswith(_GROUP_START):
            for line in lines[start + 1 :]:
                match = _GROUP_LINE.match(line)
                if match:
                    name = match.group(1).rsplit(".", 1)[-1]
                    return ParsedTraceback(name, match.group(2) or "", lines[start:])
            return None
    return None


def coalesce(frames: Iterable[AgentFrame], limit: int = COALESCE_CHARS) -> list[AgentFrame]:
    """Merge runs of same-stream frames into fewer frames, keeping order and every byte."""
    out: list[AgentFrame] = []
    for frame in frames:
        if (
            isinstance(frame, Stream)
            and out
            and isinstance(out[-1], Stream)
            and out[-1].name == frame.name
            and len(out[-1].data) + len(frame.data) <= limit
        ):
            out[-1] = Stream(frame.name, out[-1].data + frame.data)
        else:
            out.append(frame)
    return out


#: The names a user sees for the agent error codes that have one of their own.
AGENT_ERROR_NAMES = {
    "EXECUTION_TIMEOUT": "ExecutionTimeout",
    "SANDBOX_DIED": "SandboxDied",
    "SANDBOX_EXPIRED": "SandboxExpired",
}
#: Agent error codes meaning the sandbox, and its state, are gone.
LOST_CODES = frozenset({"SANDBOX_DIED", "SANDBOX_EXPIRED"})


class CellMapper:
    """Maps the frames of one cell to Jupyter iopub messages and the execute reply.

    Args:
        execution_count: the kernel's count for this cell.
        known_display_ids: display ids seen in earlier cells (shared, updated in place).
        lost_hint: what happens next when the agent says the sandbox is gone, appended to
            that error's line.
    """

    def __init__(
        self, execution_count: int, known_display_ids: set[str] | None = None, lost_hint: str = ""
    ) -> None:
        self.lost_hint = lost_hint
        self.execution_count = execution_count
        self.display_ids = known_display_ids if known_display_ids is not None else set()
        self.error: dict | None = None
        #: the ``code`` of the first agent ``error`` frame (e.g. ``SANDBOX_DIED``), if any
        self.agent_error_code: str | None = None
        self.completed = False
        self.payload: list[dict] = []
        self._stderr_tail = ""

    # -- frames in -------------------------------------------------------------------

    def feed(self, frame: AgentFrame) -> list[Message]:
        """The iopub messages (and ``input_request``) for one frame, in order."""
        if self.completed:
            return []  # nothing counts after ``complete``
        if isinstance(frame, Stream):
            if frame.name == "stderr":
                self._stderr_tail = (self._stderr_tail + frame.data)[-STDERR_TAIL_CHARS:]
            return [("stream", {"name": frame.name, "text": frame.data})] if frame.data else []
        if isinstance(frame, Result):
            return self._result(frame)
        if isinstance(frame, ExecuteResult):  # [ext] in the sandbox's order
            return [self._execute_result(frame.data, frame.metadata)]
        if isinstance(frame, Display):
            display_id = frame.transient.get("display_id")
            msg_type = "display_data"
            if isinstance(display_id, str):
                if display_id in self.display_ids:
                    msg_type = "update_display_data"
                self.display_ids.add(display_id)
            content = {"data": frame.data, "metadata": frame.metadata, "transient": frame.transient}
            return [(msg_type, content)]
        if isinstance(frame, ClearOutput):
            return [("clear_output", {"wait": frame.wait})]
        if isinstance(frame, AgentError):
            self.agent_error_code = self.agent_error_code or frame.code
            ename = AGENT_ERROR_NAMES.get(frame.code, "SandboxError")
            evalue = frame.error
            if frame.code in LOST_CODES and self.lost_hint:
                evalue = f"{evalue.rstrip('.')}. {self.lost_hint}"
            return self._set_error(ename, evalue)
        if isinstance(frame, InputRequest):
            return [("input_request", {"prompt": frame.prompt, "password": frame.password})]
        if isinstance(frame, Complete):
            self.completed = True
            if not frame.success:  # failure with no error said anywhere: show one
                return self._set_error("ExecutionFailed", "the sandbox reported failure")
        return []

    def _result(self, frame: Result) -> list[Message]:
        out: list[Message] = []
        if frame.payload:
            self.payload = list(frame.payload)
        if frame.data:
            out.append(self._execute_result(frame.data, frame.metadata))
        if frame.ename is not None:
            out += self._set_error(frame.ename, frame.evalue or "", frame.traceback or [])
        elif frame.exit_code != 0:
            parsed = parse_traceback(self._stderr_tail)
            if parsed:
                out += self._set_error(parsed.ename, parsed.evalue, parsed.traceback)
            else:
                text = f"the code exited with status {frame.exit_code}"
                out += self._set_error("ExecutionFailed", text, [text])
        return out

    def _execute_result(self, data: dict, metadata: dict) -> Message:
        return (
            "execute_result",
            {"execution_count": self.execution_count, "data": data, "metadata": metadata},
        )

    def _set_error(self, ename: str, evalue: str, traceback: list[str] | None = None) -> list[Message]:
        """Record the cell's error (the first one wins); without a traceback, the one line."""
        if self.error is not None:
            return []
        if traceback is None:
            traceback = [f"{ename}: {evalue}"]
        self.error = {"ename": ename, "evalue": evalue, "traceback": traceback}
        return [("error", dict(self.error))]

    # -- end of cell -----------------------------------------------------------------

    def fail(self, ename: str, evalue: str) -> list[Message]:
        """Record a kernel-side failure (lost socket, interrupt, control-plane error)."""
        return self._set_error(ename, evalue)

    def finish(self) -> dict:
        """The ``execute_reply`` content for this cell."""
        if self.error is not None:
            return {"status": "error", "execution_count": self.execution_count, **self.error}
        return {
            "status": "ok",
            "execution_count": self.execution_count,
            "payload": self.payload,
            "user_expressions": {},
        }
