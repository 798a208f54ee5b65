"""The kernel against an agent with extensions and against a plain HopX agent.

The plain agent is ``hopx-kernel serve --no-extensions`` (cloud mode): no extension is
advertised and ``"extensions": 1`` is ignored, so the kernel's fallbacks are exercised
for real — interrupt by closing the socket, the state probe, the error parsed from the
stderr traceback, and ``input()`` refused with a clear error.
"""

from __future__ import annotations

import threading

import pytest

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
