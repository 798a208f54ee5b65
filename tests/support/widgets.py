"""Driving ipywidgets from a jupyter_client "frontend": run a cell and keep its messages,
send a frontend ``comm_msg``, wait for an iopub message, find a widget's comm."""

from __future__ import annotations

import time
from queue import Empty

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def run(kc, code: str, timeout: float = 60) -> tuple[dict, list[dict]]:
    """Run a cell; return (execute_reply content, every iopub message it parented, in order)."""
    msg_id = kc.execute(code)
    msgs, deadline = [], time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        msgs.append(msg)
    while True:
        reply = kc.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], msgs


def send_comm(kc, comm_id: str, data: dict, buffers=()) -> str:
    """Send a frontend ``comm_msg``; returns its msg_id."""
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    kc.session.send(kc.shell_channel.socket, msg, buffers=list(buffers))
    return msg["header"]["msg_id"]


def wait_iopub(kc, pred, timeout: float = 20) -> dict:
    """The first iopub message satisfying ``pred``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.05, deadline - time.monotonic()))
        except Empty:
            raise TimeoutError("no matching iopub message") from None
        if pred(msg):
            return msg


def widget_id(msgs: list[dict], name: str) -> str:
    for m in msgs:
        if m["msg_type"] == "comm_open" and m["content"]["data"]["state"].get("_model_name") == name:
            return m["content"]["comm_id"]
    raise AssertionError(f"no comm_open for {name}: {[m['msg_type'] for m in msgs]}")


#: a cell whose widget is updated from a thread, after the cell, once the frontend changes
#: the widget's description (use with :func:`expect_thread_update`)
THREAD_UPDATE_CELL = (
    "import threading, ipywidgets as w\n"
    "bar = w.IntProgress(max=10)\n"
    "go = threading.Event()\n"
    "bar.observe(lambda change: go.set(), 'description')\n"
    "def later():\n"
    "    go.wait()\n"
    "    bar.value = 7\n"
    "threading.Thread(target=later, daemon=True).start()\n"
)


def expect_thread_update(kc, bar: str) -> None:
    """Change ``bar``'s description as a frontend; its thread's update must come back."""
    send_comm(kc, bar, {"method": "update", "state": {"description": "go"}, "buffer_paths": []})
    update = wait_iopub(
        kc,
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == bar
            and m["content"]["data"].get("state", {}).get("value") == 7
        ),
    )
    assert update["content"]["data"]["method"] == "update"
