"""Jupyter messages → sandbox frames, for one running cell (docs/protocol.md §2.2). Pure: no
sockets, no clocks. The kernel side's :mod:`hopx_kernel.mapping` goes the other way.

The sandbox's IPython kernel publishes a cell's output on iopub; :func:`to_frames` turns
each message into the frames sent now, in order, and :func:`cell_ending` picks out what
the ``result`` frame reports later (the cell's value and its error).

Rules kept here, in one place:
- stream text becomes ``stdout``/``stderr`` frames, cut to fit a frame (any other stream
  name counts as stdout);
- ``display_data`` and ``update_display_data`` both become ``display`` (the kernel side
  tells updates by their ``display_id``);
- ``execute_result`` is kept for the ``result`` frame, unless the client numbers its cells
  (``in_order``): then it is an ``execute_result`` frame in the kernel's output order;
- ``error`` is never a frame of its own: it ends up in the ``result`` frame;
- with extensions, every other message but ``status`` and ``execute_input`` (comms and
  the like) travels whole as a ``jupyter`` frame, binary buffers included; without
  them it is dropped.

Example:
    >>> to_frames({"header": {"msg_type": "stream"}, "content": {"name": "stdout", "text": "hi\\n"}})
    [Stream(name='stdout', data='hi\\n')]
    >>> cell_ending({"header": {"msg_type": "error"}, "content": {"ename": "E", "evalue": "x"}})
    {'ename': 'E', 'evalue': 'x', 'traceback': []}
"""

from __future__ import annotations

from typing import Any

from ... import frames
from ...frames import AgentFrame, ClearOutput, Display, ExecuteResult, Jupyter, Stream

#: iopub messages a cell's stream never carries as ``jupyter`` frames (the kernel makes its own)
NOT_FORWARDED = frozenset({"status", "execute_input"})


def to_frames(msg: dict, *, extensions: bool = False, in_order: bool = False) -> list[AgentFrame]:
    """The frames one iopub message of a running cell becomes, to send now.

    Args:
        msg: a jupyter_client message (``header``, ``content``, optional ``buffers``).
        extensions: [ext] the client asked for extensions: messages without a frame of
            their own travel as ``jupyter`` frames.
        in_order: [ext] the client numbers its cells: ``execute_result`` is sent in order.
    """
    msg_type = msg["header"]["msg_type"]
    content = msg["content"]
    if msg_type == "stream":
        name = "stderr" if content.get("name") == "stderr" else "stdout"
        return [Stream(name, chunk) for chunk in frames.split_text(content.get("text", ""))]
    if msg_type in ("display_data", "update_display_data"):
        return [
            Display(
                data=content.get("data", {}),
                metadata=content.get("metadata", {}),
                transient=content.get("transient", {}),
            )
        ]
    if msg_type == "clear_output":
        return [ClearOutput(bool(content.get("wait", False)))]
    if msg_type == "execute_result":
        return [ExecuteResult(content.get("data", {}), content.get("metadata", {}))] if in_order else []
    if msg_type == "error":
        return []
    if extensions and msg_type not in NOT_FORWARDED:
        return [Jupyter(plain_msg(msg), tuple(bytes(b) for b in msg.get("buffers") or ()))]
    return []


def cell_ending(msg: dict, in_order: bool = False) -> dict[str, Any]:
    """What one iopub message says about how the cell ended, for its ``result`` frame:
    ``data`` and ``metadata`` of an ``execute_result`` that was not sent in order,
    ``ename``, ``evalue`` and ``traceback`` of an ``error``; ``{}`` for anything else."""
    msg_type = msg["header"]["msg_type"]
    content = msg["content"]
    if msg_type == "execute_result" and not in_order:
        return {"data": content.get("data", {}), "metadata": content.get("metadata", {})}
    if msg_type == "error":
        return {
            "ename": content.get("ename", "Error"),
            "evalue": content.get("evalue", ""),
            "traceback": list(content.get("traceback", [])),
        }
    return {}


def plain_msg(msg: dict) -> dict:
    """A jupyter_client message as the wire carries it: the four dicts and msg_type.

    Example:
        >>> plain_msg({"header": {"msg_type": "comm_msg"}, "content": {"a": 1}, "buffers": []})
        {'header': {'msg_type': 'comm_msg'}, 'parent_header': {}, 'metadata': {}, 'content': {'a': 1}, 'msg_type': 'comm_msg'}
    """
    return {
        "header": msg["header"],
        "parent_header": msg.get("parent_header") or {},
        "metadata": msg.get("metadata") or {},
        "content": msg.get("content") or {},
        "msg_type": msg["header"]["msg_type"],
    }
