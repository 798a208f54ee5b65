"""The kernel never crashes or hangs, whatever an agent sends.

A hostile HopX endpoint runs inside the test, on loopback, in a thread with its own event
loop: a minimal control plane (tornado: create, get, delete, token refresh, timeout) and an
agent (websockets: ``GET /health`` and ``/execute/stream``) on a second port, which is the
sandbox's ``public_host``. After the ``execute`` frame the agent plays a *script*: raw
text/binary frames, then ``complete`` and/or a close (clean with any code, or an abrupt TCP
reset). The real kernel runs in cloud mode against it.

Per cell the user must see: an ``execute_reply`` (bounded time) with the right status, at
most one ``error`` message, every valid stdout chunk sent before the first ``complete`` in
order (nothing after it), and a kernel that still answers ``kernel_info``.

Never generated: an agent that keeps the socket open and stays silent without
``complete`` — that is a slow cell, and waiting is correct (pings keep being answered).

``HKT_FUZZ_EXAMPLES=400`` runs the property with more examples than the default 40.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from ..support.kernels import execute, start_kernel, stop_kernel

CELL_TIMEOUT = 20
KNOWN = (
    "stdout",
    "stderr",
    "result",
    "complete",
    "error",
    "display",
    "clear_output",
    "input_request",
    "jupyter",
)
DISCONNECTED = ("SandboxDisconnected", "SandboxStalled")
_SURROGATE = re.compile("[\ud800-\udfff]")


# ------------------------------------------------------------------ the hostile endpoint


def _rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Hostile:
    """Control plane + agent on 127.0.0.1; the next cell's script is set with :meth:`play`.

    A script is a list of steps:
      ("send", str | bytes)     a text (str) or binary (bytes) frame
      ("send_text_bytes", b)    a *text* frame with these raw bytes (may be invalid UTF-8)
      ("close", code)           a clean close with this code; the script ends
      ("abort",)                drop the TCP connection without a close frame; ends
      ("open",)                 keep the socket open until the kernel closes it; ends
      ("await_reply",)          wait (bounded) for the kernel's next frame to the agent
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: list[tuple] = [("send", '{"type":"complete","success":true}'), ("close", 1000)]
        self.extensions = True
        self.refuse: int | None = None  # answer the upgrade with this HTTP status
        self.created = 0
        self.deleted: list[str] = []
        self.client_frames: list[dict] = []  # what the kernel sent after each execute frame
        self.executes: list[dict] = []
        self._idle: set = set()  # accepted connections with no execute frame yet (loop thread)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hostile-agent", daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    # -- set up from the test thread -----------------------------------------------------

    def play(self, script: list[tuple], *, extensions: bool | None = None, refuse: int | None = None) -> None:
        """Set what the next execution gets. With ``refuse``, connections the kernel opened
        ahead of time are closed first (handshake completed), so the next cell must
        connect afresh and meet the refusal."""
        with self._lock:
            self._script = list(script)
            self.refuse = refuse
            if extensions is not None:
                self.extensions = extensions
        if refuse is not None:
            asyncio.run_coroutine_threadsafe(self._drop_idle(), self.loop).result(10)

    async def _drop_idle(self) -> None:
        idle, self._idle = list(self._idle), set()
        await asyncio.gather(*(ws.close(1001, "going away") for ws in idle))

    def state(self):
        with self._lock:
            return list(self.client_frames), list(self.executes), self.created, list(self.deleted)

    def close(self) -> None:
        async def stop():
            self.agent.close()
            await self.agent.wait_closed()
            self.http.stop()
            await self.http.close_all_connections()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    # -- servers (in the loop thread) ----------------------------------------------------

    async def _start(self) -> None:
        self.agent = await serve(
            self._agent,
            "127.0.0.1",
            0,
            process_request=self._agent_http,
            compression=None,
            ping_interval=None,
            max_size=1 << 20,
        )
        self.agent_url = f"http://127.0.0.1:{self.agent.sockets[0].getsockname()[1]}"
        outer = self

        class Sandboxes(tornado.web.RequestHandler):
            def check_xsrf_cookie(self):
                pass

            def obj(self, sid: str) -> dict:
                now = datetime.now(timezone.utc)
                return {
                    "id": sid,
                    "status": "running",
                    "public_host": outer.agent_url,
                    "auth_token": "tok",
                    "token_expires_at": _rfc3339(now + timedelta(hours=24)),
                    "expires_at": _rfc3339(now + timedelta(hours=1)),
                    "created_at": _rfc3339(now),
                    "template_name": "code-interpreter",
                }

            def post(self, sid: str | None = None, action: str | None = None):
                if sid is None:
                    with outer._lock:
                        outer.created += 1
                        n = outer.created
                    self.set_status(201)
                    self.finish(self.obj(f"sbx-{n}"))
                elif action == "token/refresh":
                    o = self.obj(sid)
                    self.finish({"auth_token": o["auth_token"], "token_expires_at": o["token_expires_at"]})
                else:
                    self.finish({})

            def get(self, sid: str, action=None):
                self.finish(self.obj(sid))

            def put(self, sid: str, action=None):
                self.finish({})

            def delete(self, sid: str, action=None):
                with outer._lock:
                    outer.deleted.append(sid)
                self.finish({})

        app = tornado.web.Application(
            [
                (r"/v1/sandboxes", Sandboxes),
                (r"/v1/sandboxes/([^/]+)", Sandboxes),
                (r"/v1/sandboxes/([^/]+)/(token/refresh|timeout|pause|resume)", Sandboxes),
            ]
        )
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.http = tornado.httpserver.HTTPServer(app)
        self.http.add_sockets(sockets)
        self.base_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"

    def _agent_http(self, connection, request):
        path = request.path.split("?")[0]
        if path == "/health":
            body = {"status": "healthy", "version": "hostile"}
            with self._lock:
                if self.extensions:
                    body["features"] = {"stream_extensions": 1}
            return connection.respond(200, json.dumps(body))
        if path == "/execute/stream":
            with self._lock:
                status = self.refuse
            if status is not None:
                return connection.respond(
                    status, json.dumps({"error": {"message": "refused", "code": "NOPE"}})
                )
            return None
        return connection.respond(404, "{}")

    async def _agent(self, ws) -> None:
        self._idle.add(ws)  # the kernel may open its next cell's connection ahead of time
        try:
            first = json.loads(await ws.recv())
        except (ConnectionClosed, ValueError):
            return
        finally:
            self._idle.discard(ws)
        if "_hopx_kernel_state_probe" in first.get("code", ""):  # the kernel's one-off check
            await ws.send('{"type":"stdout","data":"True\\n"}')
            await ws.send('{"type":"complete","success":true}')
            await ws.close()
            return
        replies: asyncio.Queue = asyncio.Queue()
        with self._lock:
            script = list(self._script)
            self.executes.append(first)

        async def drain():
            async for raw in ws:
                with self._lock:
                    self.client_frames.append(json.loads(raw))
                replies.put_nowait(raw)

        reader = asyncio.ensure_future(drain())
        try:
            for step in script:
                kind = step[0]
                if kind == "send":
                    await ws.send(step[1])
                elif kind == "send_text_bytes":
                    await ws.send(step[1], text=True)
                elif kind == "await_reply":
                    await asyncio.wait_for(replies.get(), 10)
                elif kind == "close":
                    await ws.close(step[1], "hostile")
                    return
                elif kind == "abort":
                    ws.transport.abort()
                    return
                elif kind == "open":
                    await asyncio.wait_for(ws.wait_closed(), 30)
                    return
        except (ConnectionClosed, asyncio.TimeoutError):
            pass
        finally:
            reader.cancel()


@pytest.fixture(scope="module")
def hostile():
    server = Hostile()
    yield server
    server.close()


@pytest.fixture(scope="module")
def kernel(hostile):
    """One cloud-mode kernel against the hostile endpoint, shared by the module."""
    km, kc = start_kernel(
        {
            "HOPX_API_KEY": "anything",
            "HOPX_BASE_URL": hostile.base_url,
            # pings run all the time (no ending here is a silent agent); the timeout leaves room
            # for a loaded machine, so a slow pong is not taken for a stall
            "HOPX_PING_INTERVAL": "1",
            "HOPX_PING_TIMEOUT": "5",
        }
    )
    yield km, kc
    stop_kernel(km, kc)


@pytest.fixture(scope="module")
def kc(kernel):
    return kernel[1]


def still_alive(kc) -> None:
    assert kc.kernel_info(reply=True, timeout=10)["content"]["status"] == "ok"


def only_error(cell) -> dict:
    errors = cell.of("error")
    assert len(errors) == 1, errors
    assert cell.status == "error"
    assert cell.reply["ename"] == errors[0]["ename"]
    return errors[0]


# ------------------------------------------------------------------ frame strategies
#
# Every generated frame is (step, effect): the script step, and what a correct kernel does
# with it if it arrives before the first ``complete``:
#   ("stdout", text)   the text shows on stdout     ("fail",)       the cell fails
#   ("input",)         an input request             ("complete", ok) the cell ends
#   ("lost",)          the kernel must drop the connection (invalid UTF-8 in a text frame)
#   None               nothing visible (keepalive, unknown, malformed and skipped, ...)


def _dump(obj, ascii_only: bool) -> str:
    text = json.dumps(obj, ensure_ascii=ascii_only)
    # a lone surrogate cannot travel as UTF-8: keep it as a JSON escape, which is legal JSON
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@st.composite
def encoded(draw, obj):
    """Send a JSON object as text (ASCII-escaped or not) or as a UTF-8 binary frame."""
    how = draw(st.sampled_from(["text", "ascii", "binary"]))
    text = _dump(obj, ascii_only=how == "ascii")
    return ("send", text.encode() if how == "binary" else text)


#: arbitrary unicode plus the awkward ones: CR, NUL, astral, line separator, lone surrogates
texts = st.text(
    st.one_of(
        st.characters(exclude_categories=()),
        st.sampled_from(["\r", "\n", "\x00", "😀", "\U0010ffff", "\u2028", "\ud800", "\udfff", "é"]),
    ),
    max_size=30,
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
mime_bundles = st.dictionaries(
    st.sampled_from(["text/plain", "text/html", "image/png", "application/json", "x/y"]),
    json_values,
    max_size=3,
)
json_objects = st.dictionaries(texts, json_values, max_size=3)
# wrongly typed values, built directly (filtering json_values would discard too much)
_lists = st.lists(json_values, max_size=3)
_dicts = st.dictionaries(texts, json_values, max_size=3)
_numbers = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False))
not_str = st.one_of(st.none(), _numbers, _lists, _dicts)
not_int = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False), texts, _lists, _dicts
)
not_dict = st.one_of(st.none(), _numbers, texts, _lists)
some_not_dict = st.one_of(_numbers, texts, _lists)  # not null
truthy_not_dict = st.one_of(
    st.just(True),
    st.integers(min_value=1),
    st.text(min_size=1),
    st.lists(json_values, min_size=1, max_size=3),
)
timestamps = st.one_of(st.none(), st.just("2025-01-01T00:00:00.000000Z"))


def _with_ts(obj, ts):
    if ts is not None:
        obj["timestamp"] = ts
    return obj


@st.composite
def stream_frames(draw):
    name, text = draw(st.sampled_from(["stdout", "stderr"])), draw(texts)
    step = draw(encoded(_with_ts({"type": name, "data": text}, draw(timestamps))))
    return step, (("stdout", text) if name == "stdout" else None)


@st.composite
def result_frames(draw):
    obj = {"type": "result", "exit_code": draw(st.one_of(st.just(0), st.integers(-300, 300), st.integers()))}
    if draw(st.booleans()):
        obj["execution_time"] = draw(st.floats(0, 1e6))
    if draw(st.booleans()):
        obj["data"] = draw(mime_bundles)
        obj["metadata"] = draw(json_objects)
    if draw(st.booleans()):
        obj["ename"] = draw(texts)
        obj["evalue"] = draw(texts)
        obj["traceback"] = draw(st.lists(texts, max_size=4))
    if draw(st.booleans()):
        obj["payload"] = draw(st.lists(json_objects, max_size=2))
    failed = "ename" in obj or obj["exit_code"] != 0
    return draw(encoded(obj)), (("fail",) if failed else None)


@st.composite
def display_frames(draw):
    obj = {"type": "display", "data": draw(mime_bundles)}
    if draw(st.booleans()):
        obj["metadata"] = draw(json_objects)
    if draw(st.booleans()):
        obj["transient"] = {"display_id": draw(st.sampled_from(["d1", "d2", "😀"]))}
    return draw(encoded(obj)), None


@st.composite
def other_valid_frames(draw):
    kind = draw(st.sampled_from(["clear_output", "input_request", "error", "complete"]))
    if kind == "clear_output":
        return draw(encoded({"type": kind, "wait": draw(st.booleans())})), None
    if kind == "input_request":
        obj = {"type": kind, "prompt": draw(texts), "password": draw(st.booleans())}
        return draw(encoded(obj)), ("input",)
    if kind == "error":
        code = draw(
            st.one_of(
                st.sampled_from(["EXECUTION_FAILED", "EXECUTION_TIMEOUT", "SANDBOX_DIED", "SANDBOX_EXPIRED"]),
                json_values,
            )
        )
        obj = _with_ts({"type": kind, "error": draw(json_values), "code": code}, draw(timestamps))
        return draw(encoded(obj)), ("fail",)
    return draw(complete_frames())


@st.composite
def complete_frames(draw):
    obj = {"type": "complete"}
    if draw(st.booleans()):
        obj["success"] = draw(st.booleans())
    return draw(encoded(obj)), ("complete", obj.get("success", True))


@st.composite
def malformed_frames(draw):
    """Known types with a wrongly typed field: the kernel skips them."""
    case = draw(st.integers(0, 9))
    if case == 0:
        obj = {"type": draw(st.sampled_from(["stdout", "stderr"])), "data": draw(not_str)}
    elif case == 1:
        obj = {"type": "result", "exit_code": draw(not_int)}
    elif case == 2:
        obj = {
            "type": "result",
            "exit_code": 1,
            "traceback": draw(st.one_of(_numbers, texts, _dicts, st.lists(not_str, min_size=1, max_size=3))),
        }
    elif case == 3:
        obj = {"type": "result", "exit_code": 1, "data": draw(some_not_dict)}
    elif case == 4:
        obj = {"type": "result", "exit_code": 1, "ename": draw(st.one_of(_numbers, _lists, _dicts))}
    elif case == 5:
        obj = {
            "type": "result",
            "payload": draw(st.one_of(st.text(min_size=1), st.lists(not_dict, min_size=1, max_size=2))),
        }
    elif case == 6:
        obj = {"type": "display", "data": draw(not_dict)}
    elif case == 7:
        obj = {
            "type": "display",
            "data": {},
            draw(st.sampled_from(["metadata", "transient"])): draw(truthy_not_dict),
        }
    elif case == 8:
        obj = {"type": "input_request", "prompt": draw(not_str)}
    else:
        obj = {"type": "result", "execution_time": draw(st.one_of(st.text(), st.booleans()))}
    return draw(encoded(obj)), None


def _is_frame(raw) -> bool:
    """Whether raw text/bytes would be a known frame (such noise is not generated)."""
    try:
        obj = json.loads(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and obj.get("type") in KNOWN


@st.composite
def noise_frames(draw):
    case = draw(st.integers(0, 6))
    if case == 0:  # an arbitrary JSON value that is not a known frame
        value = draw(json_values)
        if isinstance(value, dict) and value.get("type") in KNOWN:
            value["type"] = "not-" + str(value["type"])
        return draw(encoded(value)), None
    if case == 1:
        raw = draw(texts.filter(lambda t: not _is_frame(t)))
        return ("send", _SURROGATE.sub("?", raw)), None
    if case == 2:  # binary, very likely invalid UTF-8
        return ("send", draw(st.binary(max_size=40).filter(lambda b: not _is_frame(b)))), None
    if case == 3:
        return ("send", draw(st.sampled_from(["", " ", "\n", "\t \r\n", b"", b"  "]))), None
    if case == 4:  # unknown types
        kind = draw(
            st.one_of(
                texts.filter(lambda t: t not in KNOWN),
                st.integers(),
                st.none(),
                st.lists(st.integers(), max_size=2),
            )
        )
        return draw(encoded({"type": kind, "data": "ignored"})), None
    if case == 5:  # a stdout frame whose binary encoding has invalid UTF-8: decoded leniently
        return ("send", b'{"type":"stdout","data":"a\xffb"}'), ("stdout", "a\ufffdb")
    # invalid UTF-8 in a *text* frame breaks the WebSocket protocol: the kernel drops the link
    return ("send_text_bytes", b'{"type":"stdout","data":"\xc3\x28"}'), ("lost",)


@st.composite
def jupyter_frames(draw):
    """[ext] ``jupyter`` frames (comm messages), text or binary with buffers, well formed or
    not: published or skipped, never the cell's undoing."""
    from hopx_kernel import wire

    header = {
        "msg_id": draw(texts.filter(bool)),
        "msg_type": draw(
            st.sampled_from(["comm_open", "comm_msg", "comm_close", "debug_event", "x_unknown"])
        ),
        "session": "s",
        "username": "u",
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    }
    msg = {
        "header": header,
        "parent_header": draw(json_objects),
        "metadata": draw(json_objects),
        "content": {"comm_id": draw(texts), "data": draw(json_objects), "target_name": "jupyter.widget"},
    }
    case = draw(st.integers(0, 5))
    if case == 0:
        return draw(encoded({"type": "jupyter", "msg": msg})), None
    if case == 1:  # binary buffers, jupyter_server's layout
        buffers = draw(st.lists(st.binary(max_size=64), max_size=3))
        return ("send", wire.pack({"type": "jupyter", "msg": msg}, buffers)), None
    if case == 2:  # a broken message: skipped
        bad = draw(st.sampled_from(["header", "content", "msg"]))
        obj = {"type": "jupyter", "msg": msg if bad != "msg" else draw(not_dict)}
        if bad != "msg":
            obj["msg"] = dict(msg, **{bad: draw(some_not_dict)})
        return draw(encoded(obj)), None
    if case == 3:  # a header without msg_id / msg_type
        return draw(encoded({"type": "jupyter", "msg": dict(msg, header={"session": "s"})})), None
    if case == 4:  # the binary layout with lying offsets
        raw = wire.pack({"type": "jupyter", "msg": msg}, [b"abc"])
        return ("send", raw[:4] + b"\xff\xff\xff\xff" + raw[8:]), None
    # part 0 not JSON
    return ("send", wire.pack({"type": "x"}, [b"1"])[:8] + b"\x00" * 20), None


frames = st.one_of(
    stream_frames(),
    stream_frames(),
    result_frames(),
    display_frames(),
    other_valid_frames(),
    malformed_frames(),
    noise_frames(),
    jupyter_frames(),
)
close_codes = st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 3000, 4000, 4999])


@st.composite
def endings(draw):
    if draw(st.integers(0, 2)):
        done = draw(complete_frames())
        after = draw(st.lists(frames, max_size=3))  # frames after complete count for nothing
        last = draw(
            st.one_of(
                st.just(("close", 1000)),
                st.just(("open",)),
                st.just(("abort",)),
                close_codes.map(lambda c: ("close", c)),
            )
        )
        return [done, *after, (last, None)]
    return [(draw(st.one_of(close_codes.map(lambda c: ("close", c)), st.just(("abort",)))), None)]


def expected(script: list[tuple]) -> dict:
    """What a correct kernel shows for a script of (step, effect)."""
    stdout, failed, completed = [], False, False
    for _, effect in script:
        if effect is None:
            continue
        if effect[0] == "stdout":
            stdout.append(effect[1])
        elif effect[0] in ("fail", "input"):  # input: this cell did not allow stdin
            failed = True
        elif effect[0] == "complete":
            completed, failed = True, failed or not effect[1]
            break
        elif effect[0] == "lost":
            break
    text = _SURROGATE.sub("\ufffd", "".join(stdout))  # lone surrogates are not valid Jupyter JSON
    return {"stdout": text, "failed": failed, "completed": completed}


# ------------------------------------------------------------------ the property


@settings(
    max_examples=int(os.environ.get("HKT_FUZZ_EXAMPLES", 40)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(body=st.lists(frames, max_size=12), ending=endings())
def test_any_frame_sequence_gives_a_reply_and_keeps_the_kernel(hostile, kc, body, ending):
    script = body + ending
    hostile.play([step for step, _ in script], extensions=True)
    want = expected(script)
    cell = execute(kc, "hostile()", timeout=CELL_TIMEOUT)
    errors = cell.of("error")
    ename = errors[0]["ename"] if errors else ""
    known = (
        "SandboxDisconnected",
        "SandboxStalled",
        "SandboxError",
        "ExecutionTimeout",
        "ExecutionFailed",
        "StdinNotImplementedError",
    )
    event(cell.status if not errors else f"error {ename if ename in known else '(an ename the agent sent)'}")
    assert cell.stream("stdout") == want["stdout"]
    if want["completed"] and not want["failed"]:
        assert cell.status == "ok" and errors == []
    else:
        assert cell.status == "error"
        assert len(errors) == 1, errors
        assert cell.reply["ename"] == errors[0]["ename"]
        if not want["completed"] and not want["failed"]:
            assert errors[0]["ename"] in DISCONNECTED
    still_alive(kc)


# ------------------------------------------------------------------ explicit cases

COMPLETE = '{"type":"complete","success":true}'


def _stdout(text: str) -> str:
    return json.dumps({"type": "stdout", "data": text})


def test_a_3_mib_frame_arrives_whole(hostile, kc):
    text = ("0123456789abcdé\r\n" * (3 * 2**20 // 17))[: 3 * 2**20]
    hostile.play([("send", _stdout(text)), ("send", COMPLETE), ("close", 1000)])
    cell = execute(kc, "big()", timeout=CELL_TIMEOUT)
    assert cell.status == "ok"
    assert cell.stream("stdout") == text
    still_alive(kc)


def test_2000_tiny_frames_arrive_in_order(hostile, kc):
    hostile.play([*(("send", _stdout(f"{i},")) for i in range(2000)), ("send", COMPLETE), ("close", 1000)])
    cell = execute(kc, "many()", timeout=CELL_TIMEOUT)
    assert cell.status == "ok"
    assert cell.stream("stdout") == "".join(f"{i}," for i in range(2000))
    still_alive(kc)


def test_binary_frames_with_invalid_utf8_are_survived(hostile, kc):
    hostile.play(
        [
            ("send", b"\xff\xfe\x80garbage"),
            ("send", b'{"type":"stdout","data":"ok \xff"}'),
            ("send", _stdout("!")),
            ("send", COMPLETE),
            ("close", 1000),
        ]
    )
    cell = execute(kc, "binary()", timeout=CELL_TIMEOUT)
    assert cell.status == "ok"
    assert cell.stream("stdout") == "ok \ufffd!"
    still_alive(kc)


def test_lone_surrogates_and_non_finite_numbers_do_not_lose_the_reply(hostile, kc):
    """Regression: JSON escapes like ``"\\ud800"`` (and ``NaN``) are valid to Python's json
    but not sendable as a Jupyter message; publishing them raised inside do_execute, so the
    frontend never got an ``execute_reply``."""
    hostile.play(
        [
            ("send", '{"type":"stdout","data":"a\\ud800b"}'),
            (
                "send",
                '{"type":"display","data":{"text/plain":"x","application/json":{"v":NaN,"w":[Infinity]}},"transient":{"display_id":"\\udfff"}}',
            ),
            (
                "send",
                '{"type":"result","exit_code":1,"ename":"E\\ud800","evalue":"v\\udc80","traceback":["\\ud83d"],"data":{"text/plain":"\\ud800"}}',
            ),
            ("send", COMPLETE),
            ("close", 1000),
        ]
    )
    cell = execute(kc, "surrogates()", timeout=CELL_TIMEOUT)
    assert cell.stream("stdout") == "a\ufffdb"
    error = only_error(cell)
    assert (error["ename"], error["evalue"], error["traceback"]) == ("E\ufffd", "v\ufffd", ["\ufffd"])
    (display,) = cell.of("display_data")
    assert display["data"]["application/json"] == {"v": None, "w": [None]}
    assert cell.of("execute_result")[0]["data"] == {"text/plain": "\ufffd"}
    still_alive(kc)


@pytest.mark.parametrize("depth", [900, 995, 5000])  # around Python's recursion limit
def test_deeply_nested_json_is_survived(hostile, kc, depth):
    nested = "[" * depth + "]" * depth
    hostile.play(
        [
            ("send", '{"type":"display","data":{"application/json":' + nested + "}}"),
            ("send", '{"type":"stdout","data":' + nested + "}"),  # malformed: skipped
            ("send", _stdout("after")),
            ("send", COMPLETE),
            ("close", 1000),
        ]
    )
    cell = execute(kc, "deep()", timeout=CELL_TIMEOUT)
    assert cell.reply["status"] in ("ok", "error")
    assert cell.stream("stdout") == "after"
    still_alive(kc)


def test_input_request_when_the_cell_did_not_allow_stdin(hostile, kc):
    """Regression: the kernel used to forward the request to a frontend that cannot answer
    and wait forever. Now the agent gets an empty answer and the cell says why it failed."""
    before = len(hostile.state()[0])
    hostile.play(
        [
            ("send", _stdout("asking\n")),
            ("send", '{"type":"input_request","prompt":"name? ","password":false}'),
            ("await_reply",),
            ("send", _stdout("got it\n")),
            ("send", COMPLETE),
            ("close", 1000),
        ]
    )
    cell = execute(kc, "input('name? ')", timeout=CELL_TIMEOUT, allow_stdin=False)
    assert cell.stream("stdout") == "asking\ngot it\n"
    error = only_error(cell)
    assert error["ename"] == "StdinNotImplementedError"
    assert hostile.state()[0][before:] == [{"type": "input_reply", "value": ""}]
    assert hostile.state()[1][-1].get("allow_stdin") is None  # and the agent had been told
    still_alive(kc)


def test_input_request_when_the_cell_allows_stdin(hostile, kc):
    before = len(hostile.state()[0])
    hostile.play(
        [
            ("send", '{"type":"input_request","prompt":"name? ","password":false}'),
            ("await_reply",),
            ("send", _stdout("hello\n")),
            ("send", COMPLETE),
            ("close", 1000),
        ]
    )
    cell = execute(
        kc, "input('name? ')", timeout=CELL_TIMEOUT, allow_stdin=True, stdin_answer=lambda c: "Ada"
    )
    assert cell.status == "ok" and cell.stream("stdout") == "hello\n"
    assert hostile.state()[0][before:] == [{"type": "input_reply", "value": "Ada"}]
    assert hostile.state()[1][-1]["allow_stdin"] is True


def test_interrupt_while_the_frontend_has_not_answered_input(hostile, kernel):
    """Regression: while waiting for the frontend's answer the kernel ignored an interrupt
    (the cell kept waiting for stdin). Now the interrupt reaches the agent and the wait ends,
    without a stale answer sent after it."""
    km, kc = kernel
    before = len(hostile.state()[0])
    hostile.play(
        [
            ("send", '{"type":"input_request","prompt":"? ","password":false}'),
            ("await_reply",),  # the interrupt
            (
                "send",
                '{"type":"result","exit_code":1,"ename":"KeyboardInterrupt","evalue":"","traceback":[]}',
            ),
            ("send", '{"type":"complete","success":false}'),
            ("close", 1000),
        ]
    )
    msg_id = kc.execute("input()", allow_stdin=True)
    kc.get_stdin_msg(timeout=CELL_TIMEOUT)  # the question reached the frontend, which does not answer
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=CELL_TIMEOUT)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=CELL_TIMEOUT)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert hostile.state()[0][before:] == [{"type": "interrupt"}]
    still_alive(kc)


@pytest.mark.parametrize(
    "status, ename", [(401, "HopxAuthError"), (500, "HopxServerError"), (410, "SandboxExpired")]
)
def test_the_agent_refuses_the_upgrade(hostile, kc, status, ename):
    created = hostile.state()[2]
    hostile.play([("send", COMPLETE), ("close", 1000)], refuse=status)
    cell = execute(kc, "refused()", timeout=CELL_TIMEOUT)
    error = only_error(cell)
    assert error["ename"] == ename, error
    assert "\n" not in error["evalue"]
    still_alive(kc)
    hostile.play([("send", _stdout("back\n")), ("send", COMPLETE), ("close", 1000)])
    after = execute(kc, "after()", timeout=CELL_TIMEOUT)
    assert after.status == "ok" and after.stream("stdout") == "back\n"
    # a 410 means the sandbox is gone: the next cell ran in a new one
    assert hostile.state()[2] == created + (status == 410)


def test_an_agent_without_extensions(hostile, kc):
    """Switch to an agent with no [ext] features (a 410 makes the kernel provision afresh,
    reading /health again) and replay hostile endings there."""
    hostile.play([("close", 1000)], refuse=410, extensions=False)
    assert execute(kc, "gone()", timeout=CELL_TIMEOUT).status == "error"
    before = len(hostile.state()[0])
    hostile.play(
        [
            ("send", _stdout("x")),
            ("send", '{"type":"input_request","prompt":"? ","password":false}'),
            ("send", '{"type":"display","data":{"text/plain":"d"}}'),
            ("abort",),
        ]
    )
    cell = execute(kc, "noext()", timeout=CELL_TIMEOUT, allow_stdin=True)
    assert cell.stream("stdout") == "x"
    assert only_error(cell)["ename"] == "StdinNotImplementedError"  # we told it: no stdin
    assert hostile.state()[0][before:] == []  # and no [ext] frame is sent to such an agent
    hostile.play([("send", _stdout("y")), ("send", COMPLETE), ("close", 4000)])
    cell = execute(kc, "noext2()", timeout=CELL_TIMEOUT)
    assert cell.status == "ok" and cell.stream("stdout") == "y"
    still_alive(kc)
    hostile.play([("send", COMPLETE), ("close", 1000)], extensions=True, refuse=410)
    execute(kc, "restore()", timeout=CELL_TIMEOUT)
    hostile.play([("send", COMPLETE), ("close", 1000)])
