"""Every [ext] frame of ``/execute/stream`` over a real WebSocket."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.server_helpers import (
    agent,
    collect,
    create,
    delete,
    execute_stream,
    of_type,
    open_stream,
    read_stdout,
    run,
    stream_sync,
    text,
)


@pytest.fixture
def sandbox(local_server):
    """A fresh sandbox per test (the tests here leave state behind)."""
    sb = create(local_server)
    yield sb
    delete(local_server, sb)


def test_order_and_byte_exact_text(local_server, sandbox):
    code = (
        "import sys\nprint('a\\r\\rb', end='')\nsys.stderr.write('E1')\nprint('é✓🙂')\n"
        "sys.stderr.write('E2')\nprint('x' * 300000)"
    )
    frames_ = stream_sync(local_server, sandbox, code)
    kinds = [f["type"] for f in frames_]
    assert kinds[-2:] == ["result", "complete"] and kinds.count("result") == 1
    assert text(frames_) == "a\r\rbé✓🙂\n" + "x" * 300000 + "\n"
    assert text(frames_, "stderr") == "E1E2"
    order = [(f["type"], f["data"][:2]) for f in frames_ if f["type"] in ("stdout", "stderr")]
    assert order.index(("stderr", "E1")) < order.index(("stderr", "E2"))
    # every frame fits the SDK's 1 MiB WebSocket limit
    assert all(len(json.dumps(f, ensure_ascii=False).encode()) < 1 << 20 for f in frames_)
    for f in frames_:
        if f["type"] in ("stdout", "stderr", "result"):
            assert f["timestamp"].endswith("Z")


def _held_until(release) -> str:
    """Cell code that waits, after its first line, until the test creates ``release``."""
    return (
        "import os, time\nprint('x')\n"
        f"while not os.path.exists({str(release)!r}):\n    time.sleep(0.01)\nprint('y')"
    )


def test_first_output_is_prompt(local_server, sandbox, tmp_path):
    # the cell cannot finish before the test has the first frame: output held back until
    # the end (or a flush that waits for more) fails here, however slow the machine
    release = tmp_path / "release"

    async def scenario():
        async with execute_stream(local_server, sandbox, _held_until(release)) as ws:
            async with asyncio.timeout(30):
                first = json.loads(await ws.recv())
            release.touch()
            rest = await collect(ws)
        return first, rest

    first, rest = run(scenario())
    assert first["type"] == "stdout" and first["data"] == "x\n"
    assert text(rest) == "y\n"
    assert rest[-1] == {"type": "complete", "success": True}


def test_display_update_clear_and_result(local_server, sandbox):
    code = (
        "from IPython.display import HTML, Image, display, clear_output\n"
        "import base64\n"
        "png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk'"
        "'+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')\n"
        "display(HTML('<i>one</i>'))\n"
        "display(Image(data=png, format='png'))\n"
        "h = display(HTML('v1'), display_id='d1')\n"
        "h.update(HTML('v2'))\n"
        "clear_output(wait=True)\n"
        "21 * 2"
    )
    frames_ = stream_sync(local_server, sandbox, code)
    displays = of_type(frames_, "display")
    assert displays[0]["data"]["text/html"] == "<i>one</i>"
    assert "image/png" in displays[1]["data"]
    assert displays[2]["transient"] == {"display_id": "d1"}
    assert displays[3]["data"]["text/html"] == "v2" and displays[3]["transient"]["display_id"] == "d1"
    assert of_type(frames_, "clear_output") == [{"type": "clear_output", "wait": True}]
    result = of_type(frames_, "result")[0]
    assert result["data"]["text/plain"] == "42" and result["exit_code"] == 0


def test_structured_error(local_server, sandbox):
    frames_ = stream_sync(local_server, sandbox, "print('before')\nraise ValueError('bad thing')")
    result = of_type(frames_, "result")[0]
    assert result["exit_code"] != 0 and result["ename"] == "ValueError"
    assert result["evalue"] == "bad thing" and any("bad thing" in line for line in result["traceback"])
    assert text(frames_, "stderr") == ""
    assert text(frames_) == "before\n"
    assert frames_[-1] == {"type": "complete", "success": False}


def test_input_request_and_reply(local_server, sandbox):
    async def scenario():
        async with execute_stream(
            local_server, sandbox, "name = input('who? ')\nprint('hi', name)", extensions=1, allow_stdin=True
        ) as ws:
            async with asyncio.timeout(20):
                while True:
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "input_request":
                        break
            assert frame == {"type": "input_request", "prompt": "who? ", "password": False}
            await ws.send(json.dumps({"type": "input_reply", "value": "ada"}))
            return await collect(ws)

    frames_ = run(scenario())
    assert "hi ada\n" in text(frames_) and frames_[-1]["success"] is True


def test_input_without_allow_stdin_fails_fast(local_server, sandbox):
    # an input() that waited would end as EXECUTION_TIMEOUT, not StdinNotImplementedError
    frames_ = stream_sync(local_server, sandbox, "input('x')", timeout=60)
    assert of_type(frames_, "error") == []
    assert of_type(frames_, "input_request") == []
    assert of_type(frames_, "result")[0]["ename"] == "StdinNotImplementedError"


def test_interrupt_keeps_state(local_server, sandbox):
    async def scenario():
        code = "kept = 'yes'\nimport time\nprint('go', flush=True)\ntime.sleep(60)"
        async with execute_stream(local_server, sandbox, code, extensions=1) as ws:
            first = json.loads(await ws.recv())
            assert first["data"] == "go\n"
            await ws.send(json.dumps({"type": "interrupt"}))
            return await collect(ws, 20)

    frames_ = run(scenario())
    assert of_type(frames_, "result")[0]["ename"] == "KeyboardInterrupt"
    assert text(stream_sync(local_server, sandbox, "print(kept)")) == "yes\n"


def test_timeout_then_sandbox_still_works(local_server, sandbox):
    frames_ = stream_sync(
        local_server, sandbox, "t = 1\nimport time\ntime.sleep(60)\nprint('ran to the end')", timeout=1
    )
    assert "ran to the end" not in text(frames_)  # stopped, not waited for
    errors = of_type(frames_, "error")
    assert errors[0]["code"] == "EXECUTION_TIMEOUT"
    assert errors[0]["error"] == "execution exceeded its 1 s timeout and was interrupted"
    kinds = [f["type"] for f in frames_]
    assert kinds.index("error") < kinds.index("result") < kinds.index("complete")
    assert of_type(frames_, "result")[0]["exit_code"] != 0 and frames_[-1]["success"] is False
    assert text(stream_sync(local_server, sandbox, "print(t + 1)")) == "2\n"


def test_env_applies_once_and_workdir(local_server, sandbox):
    code = "import os\nprint(os.environ.get('ONCE'), os.getcwd().endswith('/sub'))"
    r = agent_mkdir = None
    from tests.support.server_helpers import agent

    r = agent(local_server, sandbox, "POST", "/files/mkdir", json={"path": "/workspace/sub"})
    assert r.status_code == 200
    first = stream_sync(local_server, sandbox, code, env={"ONCE": "1"}, workdir="/workspace/sub")
    assert text(first) == "1 True\n"
    second = stream_sync(local_server, sandbox, code)
    assert text(second) == "None False\n"
    bad = stream_sync(local_server, sandbox, "print(1)", workdir="/etc")
    assert of_type(bad, "error")[0]["code"] == "PATH_NOT_ALLOWED"
    del agent_mkdir


def test_sandbox_env_vars_and_masking(local_server, sandbox):
    from tests.support.server_helpers import agent

    r = agent(local_server, sandbox, "PUT", "/env", json={"env_vars": {"PLAIN": "p", "API_TOKEN": "s3cret"}})
    assert r.status_code == 200
    assert r.json()["env_vars"] == {"PLAIN": "p", "API_TOKEN": "***MASKED***"}
    code = "import os\nprint(os.environ.get('PLAIN'), os.environ.get('API_TOKEN'))"
    assert text(stream_sync(local_server, sandbox, code)) == "p s3cret\n"
    agent(local_server, sandbox, "PATCH", "/env", json={"env_vars": {"MORE": "m"}})
    agent(local_server, sandbox, "PUT", "/env", json={"env_vars": {"MORE": "m"}})
    code = "import os\nprint(os.environ.get('PLAIN'), os.environ.get('MORE'))"
    assert text(stream_sync(local_server, sandbox, code)) == "None m\n"
    bash = stream_sync(local_server, sandbox, "echo $MORE", language="bash")
    assert text(bash) == "m\n"


def test_bash_streams_and_interrupts(local_server, sandbox):
    frames_ = stream_sync(local_server, sandbox, "echo one; echo two >&2; pwd; exit 4", language="bash")
    assert text(frames_).startswith("one\n") and text(frames_, "stderr") == "two\n"
    assert of_type(frames_, "result")[0]["exit_code"] == 4

    async def scenario():
        async with execute_stream(
            local_server, sandbox, "echo start; sleep 60", language="bash", extensions=1
        ) as ws:
            await read_stdout(ws, "start\n")
            await ws.send(json.dumps({"type": "interrupt"}))
            return await collect(ws, 20)

    frames_ = run(scenario())
    assert of_type(frames_, "result")[0]["exit_code"] == 130


def test_go_is_refused(local_server, sandbox):
    frames_ = stream_sync(local_server, sandbox, "package main", language="go")
    assert of_type(frames_, "error")[0] == {
        "type": "error",
        "code": "INVALID_REQUEST",
        "error": "language 'go' is not available in the local sandbox",
        "timestamp": frames_[0]["timestamp"],
    }
    assert frames_[-1] == {"type": "complete", "success": False}


def test_complete_and_inspect(local_server, sandbox):
    from tests.support.server_helpers import agent

    stream_sync(local_server, sandbox, "alpha_value = 3")
    r = agent(local_server, sandbox, "POST", "/complete", json={"code": "alpha_v", "cursor_pos": 7})
    assert r.status_code == 200 and "alpha_value" in r.json()["matches"], r.json()
    assert r.json()["cursor_start"] == 0 and r.json()["cursor_end"] == 7
    r = agent(
        local_server, sandbox, "POST", "/inspect", json={"code": "len", "cursor_pos": 3, "detail_level": 0}
    )
    assert r.json()["found"] is True and "text/plain" in r.json()["data"]
    r = agent(local_server, sandbox, "POST", "/complete", json={"code": "x", "cursor_pos": "9"})
    assert r.status_code == 400


def test_executions_in_turn_on_one_socket_only_when_asked(local_server, sandbox):
    """docs/protocol.md §2.5 [ext]: with ``"extensions": 1`` the socket carries the next execute
    frame after ``complete``; without it (every official client) the agent closes with 1000."""
    health = agent(local_server, sandbox, "GET", "/health").json()
    assert health["features"]["stream_reuse"] == 1

    async def scenario():
        async with open_stream(local_server, sandbox) as ws:
            runs = []
            for i in range(3):
                await ws.send(
                    json.dumps(
                        {
                            "type": "execute",
                            "extensions": 1,
                            "code": f"n = {i} if {i} == 0 else n + 1\nprint(n)",
                        }
                    )
                )
                runs.append(await collect(ws))
            # the last one without extensions: HopX's behaviour, the socket ends after it
            await ws.send(json.dumps({"type": "execute", "code": "print(n * 10)"}))
            runs.append(await collect(ws))
            await ws.wait_closed()
            return runs, ws.close_code

    runs, close_code = run(scenario())
    assert [text(r) for r in runs] == ["0\n", "1\n", "2\n", "20\n"]
    assert all(r[-1] == {"type": "complete", "success": True} for r in runs)
    assert close_code == 1000


def test_inspect_with_the_cursor_past_the_code_answers_as_ipykernel_does(local_server, sandbox):
    """JupyterLab's completer documentation panel sends the code cut at the item's end and the
    cursor past it (``resolve()`` in @jupyterlab/completer); that was a 400 on every Tab."""

    r = agent(
        local_server, sandbox, "POST", "/inspect", json={"code": "len", "cursor_pos": 9, "detail_level": 0}
    )
    assert r.status_code == 200 and r.json()["found"] is True, r.json()
    r = agent(local_server, sandbox, "POST", "/complete", json={"code": "le", "cursor_pos": 5})
    assert r.status_code == 200 and "len" in r.json()["matches"]


def test_completion_has_types_and_signatures_as_local_ipykernel(local_server, sandbox):

    stream_sync(local_server, sandbox, "import os\ndef greet(n): return n")
    for _ in range(20):  # Jedi's first inference in a cold kernel may take longer than 2 s
        r = agent(local_server, sandbox, "POST", "/complete", json={"code": "gre", "cursor_pos": 3})
        if not r.json().get("timed_out"):
            break
    types = r.json()["metadata"]["_jupyter_types_experimental"]
    assert {"start": 0, "end": 3, "text": "greet", "type": "function", "signature": "(n)"} in types
    r = agent(local_server, sandbox, "POST", "/complete", json={"code": "o", "cursor_pos": 1})
    kinds = {t["text"]: t["type"] for t in r.json()["metadata"]["_jupyter_types_experimental"]}
    assert kinds.get("os") == "module"


def test_execution_count_and_in_order_result_only_with_extensions(local_server, sandbox):
    """[ext] ``execution_count`` numbers the cell and brings ``execute_result`` as its own
    frame in the kernel's order; without ``"extensions": 1`` (official clients) the field is
    ignored and the value stays on ``result``, as HopX sends it."""
    plain = stream_sync(local_server, sandbox, "6 * 7", execution_count=9, extensions=None)
    assert not of_type(plain, "execute_result")
    assert "data" not in of_type(plain, "result")[0]  # HopX's result: exit_code, execution_time
    ext = stream_sync(
        local_server,
        sandbox,
        "from IPython.display import display\ndisplay('shown'); 6 * 7",
        execution_count=1012,
        extensions=1,
    )
    kinds = [f["type"] for f in ext if f["type"] in ("display", "execute_result", "result")]
    assert kinds == ["display", "execute_result", "result"]
    assert "data" not in of_type(ext, "result")[0]
    numbered = stream_sync(
        local_server, sandbox, "_1012, len(In), Out[1012]", execution_count=1013, extensions=1
    )
    assert of_type(numbered, "execute_result")[0]["data"]["text/plain"] == "(42, 1014, 42)"


# ------------------------------------------------------------ clients without extensions

PLAIN_RESULT_KEYS = {"type", "exit_code", "execution_time", "timestamp"}


def test_plain_client_gets_the_traceback_on_stderr(local_server, sandbox):
    """What an official SDK sees: HopX's frames only, the error as stderr text."""
    frames_ = stream_sync(local_server, sandbox, "print('before'); 1/0", extensions=None)
    assert {f["type"] for f in frames_} <= {"stdout", "stderr", "result", "complete"}
    assert text(frames_) == "before\n"
    err = text(frames_, "stderr")
    assert err.startswith("---") or "Traceback" in err or "ZeroDivisionError" in err.splitlines()[0]
    assert err.rstrip().endswith("ZeroDivisionError: division by zero") and "\x1b" not in err
    result = of_type(frames_, "result")[0]
    assert set(result) == PLAIN_RESULT_KEYS and result["exit_code"] == 1
    assert frames_[-1] == {"type": "complete", "success": False}


def test_plain_client_gets_no_rich_frames_and_no_stdin(local_server, sandbox):
    code = (
        "from IPython.display import HTML, display, clear_output\n"
        "display(HTML('<i>x</i>'))\nclear_output()\nprint('out')\n21 * 2"
    )
    frames_ = stream_sync(local_server, sandbox, code, extensions=None)
    assert [f["type"] for f in frames_] == ["stdout", "result", "complete"]
    assert set(frames_[1]) == PLAIN_RESULT_KEYS
    # an [ext] client field without "extensions": 1 is ignored: input() fails at once
    asked = stream_sync(local_server, sandbox, "input('x')", extensions=None, allow_stdin=True)
    assert of_type(asked, "input_request") == []
    assert "StdinNotImplementedError" in text(asked, "stderr")


def test_plain_client_timeout_adds_no_traceback(local_server, sandbox):
    frames_ = stream_sync(local_server, sandbox, "import time\ntime.sleep(30)", timeout=1, extensions=None)
    assert [f["type"] for f in frames_] == ["error", "result", "complete"]
    assert frames_[0]["code"] == "EXECUTION_TIMEOUT"
    assert set(frames_[1]) == PLAIN_RESULT_KEYS and frames_[1]["exit_code"] != 0


def test_plain_client_interrupt_frame_is_unknown(local_server, sandbox):
    async def scenario():
        code = "import time\nprint('go', flush=True)\ntime.sleep(0.5)\nprint('done')"
        async with execute_stream(local_server, sandbox, code) as ws:
            await read_stdout(ws, "go\n")
            await ws.send(json.dumps({"type": "interrupt"}))
            return await collect(ws, 20)

    frames_ = run(scenario())
    assert of_type(frames_, "error")[0]["error"] == "unknown frame type 'interrupt'"
    assert text(frames_) == "done\n" and frames_[-1]["success"] is True


@pytest.fixture(scope="module")
def plain_server():
    """A server started with ``--no-extensions``: a plain HopX agent."""
    from tests.support.local_server import start_server

    server = start_server("--no-extensions", "--pool-size", "0")
    yield server
    assert server.stop() == 0


def test_no_extensions_server_ignores_the_ask(plain_server):
    import httpx

    features = httpx.get(f"{plain_server.base_url}/health").json()["features"]
    assert not {"stream_extensions", "kernel_channel", "stream_reuse"} & set(features)
    sb = create(plain_server)
    try:
        frames_ = stream_sync(
            plain_server, sb, "from IPython.display import HTML\ndisplay(HTML('x'))\n1/0", allow_stdin=True
        )  # asks: extensions 1
        assert {f["type"] for f in frames_} == {"stderr", "result", "complete"}
        assert set(of_type(frames_, "result")[0]) == PLAIN_RESULT_KEYS
        assert "ZeroDivisionError" in text(frames_, "stderr")
    finally:
        delete(plain_server, sb)


def test_no_extensions_server_closes_after_each_execution_even_when_asked(plain_server):
    """A plain agent has no socket reuse to offer: ``complete`` and a 1000 close, always."""
    sb = create(plain_server)

    async def scenario():
        async with execute_stream(plain_server, sb, "print(1)", extensions=1) as ws:
            frames_ = await collect(ws)
            await ws.wait_closed()
            return frames_, ws.close_code

    try:
        frames_, close_code = run(scenario())
        assert text(frames_) == "1\n" and frames_[-1] == {"type": "complete", "success": True}
        assert close_code == 1000
    finally:
        delete(plain_server, sb)
