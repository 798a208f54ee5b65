"""The kernel against an agent with extensions and against a plain HopX agent.

The plain agent is ``hopx-kernel serve --no-extensions`` (cloud mode): no extension is
advertised and ``"extensions": 1`` is ignored, so the kernel's fallbacks are exercised
for real — interrupt by closing the socket, the state probe, the error parsed from the
stderr traceback, and ``input()`` refused with a clear error.
"""

from __future__ import annotations

import importlib.util
import threading

import pytest

from hopx_kernel.wire import WIDGET_VIEW_MIME

from ..support.kernels import execute, running_kernel
from ..support.local_server import start_server

LOOP = "import time\nprint('running', flush=True)\nwhile True:\n    time.sleep(0.05)"


@pytest.fixture(scope="module", params=["extensions", "plain"])
def mode_kernel(request):
    """(mode, manager, client): embedded mode, or cloud mode against a plain agent."""
    if request.param == "extensions":
        with running_kernel() as (km, kc):
            yield request.param, km, kc
        return
    server = start_server("--no-extensions")
    try:
        env = {"HOPX_API_KEY": server.api_key, "HOPX_BASE_URL": server.base_url}
        with running_kernel(env) as (km, kc):
            yield request.param, km, kc
    finally:
        assert server.stop() == 0


def test_the_agent_says_whether_it_has_extensions(mode_kernel):
    mode, _, kc = mode_kernel
    text = execute(kc, "%hopx").stream()
    line = next(ln for ln in text.splitlines() if ln.startswith("stream extensions"))
    assert line.split()[-1] == str(mode == "extensions")


def test_state_persists_and_the_probe_says_nothing(mode_kernel):
    _, _, kc = mode_kernel
    assert execute(kc, "kept = 41").status == "ok"
    cell = execute(kc, "print(kept + 1)")
    assert cell.stream() == "42\n" and cell.stream("stderr") == ""


def test_the_error_names_the_exception(mode_kernel):
    mode, _, kc = mode_kernel
    cell = execute(kc, "def f():\n    return 1 / 0\nf()")
    assert cell.status == "error"
    assert (cell.reply["ename"], cell.reply["evalue"]) == ("ZeroDivisionError", "division by zero")
    assert execute(kc, "print('still here')").stream() == "still here\n"


def test_input_is_answered_or_refused_clearly(mode_kernel):
    mode, _, kc = mode_kernel
    cell = execute(
        kc,
        "name = input('name? ')\nprint('hi', name)",
        allow_stdin=True,
        stdin_answer=lambda content: "Ada",
        timeout=30,
    )
    if mode == "extensions":
        assert cell.status == "ok" and cell.stream().endswith("hi Ada\n")
    else:
        assert cell.status == "error" and cell.reply["ename"] == "StdinNotImplementedError"


def test_interrupt_stops_the_cell(mode_kernel):
    mode, km, kc = mode_kernel
    asked = threading.Event()

    def on_output(cell):
        if "running" in cell.stream() and not asked.is_set():
            asked.set()
            km.interrupt_kernel()

    assert execute(kc, "kept_too = 'yes'").status == "ok"
    cell = execute(kc, LOOP, on_output=on_output, timeout=60)
    assert cell.status == "error" and cell.reply["ename"] == "KeyboardInterrupt"
    if mode == "plain":
        assert "connection was closed" in cell.reply["evalue"]
    # closing the socket makes the local agent interrupt the code too: state is kept
    assert execute(kc, "print(kept_too)", timeout=60).stream() == "yes\n"


def test_kernel_info_offers_the_debugger_only_with_the_channel(mode_kernel):
    mode, _, kc = mode_kernel
    msg_id = kc.kernel_info()
    while True:
        reply = kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    features = reply["content"]["supported_features"]
    if mode == "plain":
        assert "debugger" not in features and "kernel subshells" not in features, features
    else:
        assert features == (["debugger"] if importlib.util.find_spec("debugpy") else []), features


def test_a_debug_request_is_always_answered(mode_kernel):
    mode, _, kc = mode_kernel
    msg = kc.session.msg(
        "debug_request",
        {"type": "request", "seq": 1, "command": "initialize", "arguments": {"adapterID": "hopx"}},
    )
    kc.control_channel.send(msg)
    while True:
        reply = kc.get_control_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            break
    content = reply["content"]
    assert reply["msg_type"] == "debug_reply" and content["command"] == "initialize"
    if mode == "plain":
        assert content["success"] is False
        assert (
            content["message"] and "\n" not in content["message"] and "kernel channel" in content["message"]
        )


def test_a_widget_cell_degrades_cleanly_without_the_channel(mode_kernel):
    """With the channel the view arrives and no note is printed. A plain agent sends
    HopX's frames only (no display frames, no result data), so the view never reaches the
    kernel: the cell still succeeds and says nothing (the once-only note for a view that
    does arrive without a channel is tests/test_comms_note.py)."""
    mode, _, kc = mode_kernel
    first = execute(kc, "import ipywidgets\nipywidgets.IntSlider(value=3)")
    second = execute(kc, "ipywidgets.IntSlider(value=4)")
    assert first.status == second.status == "ok"
    views = [c for c in first.of("execute_result") if WIDGET_VIEW_MIME in c["data"]]
    assert len(views) == (1 if mode == "extensions" else 0), first.outputs
    assert first.stream("stderr") == second.stream("stderr") == "", (first.outputs, second.outputs)
