"""Conformance: every applicable method of the official Python SDK against ``hopx-kernel serve``.

Each method's outcome goes in a method × result table, printed (``-s``) and written to
``sdk-conformance-python.txt`` in the run's temporary folder. Left out: desktop, terminal
and VNC (docs/local-sandbox.md says why).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hopx_ai import AsyncSandbox, Sandbox, errors

from ..support.server_helpers import run


class Table:
    """Collects (method, result) rows; every row is an assertion that passed."""

    def __init__(self, title: str) -> None:
        self.title, self.rows = title, []

    def ok(self, method: str, result: str) -> None:
        self.rows.append((method, result))

    def write(self) -> str:
        width = max(len(m) for m, _ in self.rows)
        text = "\n".join([self.title, *(f"  {m.ljust(width)}  {r}" for m, r in self.rows)]) + "\n"
        name = self.title.split()[0].lower()
        Path(tempfile.gettempdir(), f"sdk-conformance-{name}.txt").write_text(text)
        print("\n" + text)
        return text


def test_python_sdk_sync(local_server):
    t = Table("python-sync hopx-ai 0.5.0 (Sandbox)")
    kw = {"api_key": local_server.api_key, "base_url": local_server.base_url}
    with pytest.raises(errors.TemplateNotFoundError):
        Sandbox.create(template="no-such-template", **kw)
    t.ok("Sandbox.create(unknown template)", "TemplateNotFoundError")
    names = [x.name for x in Sandbox.list_templates(**kw)]
    assert "code-interpreter" in names
    t.ok("Sandbox.list_templates", f"{names}")
    assert Sandbox.get_template("code-interpreter", **kw).name == "code-interpreter"
    t.ok("Sandbox.get_template", "code-interpreter")
    sb = Sandbox.create(template="code-interpreter", **kw)
    t.ok("Sandbox.create", sb.sandbox_id)
    try:
        assert sb.get_info().status == "running"
        t.ok("get_info", "running")
        info = sb.get_agent_info()
        assert info["agent"] == "hopx-kernel-local" and "endpoints" in info
        t.ok("get_agent_info (/info)", info["agent_version"])
        r = sb.run_code("x = 6 * 7\nprint(x)")
        assert r.success and r.stdout == "42\n"
        t.ok("run_code", "stdout 42")
        r = sb.run_code("print('before'); 1/0")
        assert not r.success and "ZeroDivisionError" in r.stderr and r.stdout == "before\n"
        t.ok("run_code (exception)", "success False, traceback in stderr")
        msgs = run(_collect(sb.run_code_stream("print('s'); 1/0")))
        kinds = [m["type"] for m in msgs]
        assert set(kinds) <= {"stdout", "stderr", "result", "complete"}, kinds
        assert "ZeroDivisionError" in "".join(m["data"] for m in msgs if m["type"] == "stderr")
        assert set(msgs[-2]) == {"type", "exit_code", "execution_time", "timestamp"}
        t.ok("run_code_stream (exception)", "stdout, stderr traceback, result, complete")
        c = sb.commands.run("echo hi; echo err >&2; exit 3")
        assert (c.stdout, c.stderr, c.exit_code) == ("hi\n", "err\n", 3)
        t.ok("commands.run", "stdout/stderr/exit_code 3")
        c = sb.commands.run("echo $GREETING", env={"GREETING": "hey"}, working_dir="/tmp")
        assert c.stdout == "hey\n"
        t.ok("commands.run(env, working_dir=/tmp)", "hey")
        c = sb.commands.run("sleep 30", background=True)
        assert "Background process started" in c.stdout
        t.ok("commands.run(background=True)", c.stdout)
        bg = sb.run_code_background("import time; print('bg'); time.sleep(30)", name="sleeper")
        pid = bg["process_id"]
        procs = sb.list_processes()
        assert any(p["process_id"] == pid and p["status"] == "running" for p in procs)
        t.ok("run_code_background + list_processes", f"{len(procs)} running")
        assert sb.kill_process(pid)["status"] == "killed"
        t.ok("kill_process", "killed")
        with pytest.raises(errors.HopxError):
            sb.kill_process(pid)
        t.ok("kill_process (twice)", "error 409")
        with pytest.raises(errors.HopxError):
            sb.kill_process("proc_nope")
        t.ok("kill_process (unknown)", "error 404 PROCESS_NOT_FOUND")
        sb.files.write("/workspace/d/a.txt", "héllo")
        assert sb.files.read("/workspace/d/a.txt") == "héllo"
        assert sb.files.exists("/workspace/d/a.txt")
        listed = sb.files.list("/workspace/d")
        assert [(f.name, f.is_directory) for f in listed] == [("a.txt", False)]
        assert listed[0].modified_time
        sb.files.write("/tmp/t.txt", "tmp")
        assert sb.files.read("/tmp/t.txt") == "tmp"
        sb.files.write("~/h.txt", "home")
        assert sb.commands.run("cat d/a.txt").stdout == "héllo"  # runs in /workspace
        sb.files.remove("/workspace/d/a.txt")
        assert not sb.files.exists("/workspace/d/a.txt")
        t.ok("files write/read/exists/list/remove", "/workspace, /tmp, ~")
        with pytest.raises(errors.FileOperationError):
            sb.files.read("/etc/passwd")
        t.ok("files.read(/etc/passwd)", "FileOperationError (403 PATH_NOT_ALLOWED)")
        sb.env.set("COLOR", "blue")
        assert sb.env.get("COLOR") == "blue"
        assert sb.run_code("import os; print(os.environ['COLOR'])").stdout == "blue\n"
        t.ok("env.set/get + run_code", "blue")
        with pytest.raises(errors.HopxError) as exc:
            sb.run_code("import time; time.sleep(10)", timeout=1)
        t.ok("run_code(timeout=1)", type(exc.value).__name__)
        sb.set_timeout(600)
        t.ok("set_timeout", "ok")
        sb.refresh_token()
        assert sb.run_code("print(x)").stdout == "42\n"
        t.ok("refresh_token", "state kept")
        sb.pause()
        assert sb.get_info().status == "paused"
        sb.resume()
        assert sb.get_info().status == "running"
        t.ok("pause/resume", "paused -> running")
    finally:
        sb.kill()
    t.ok("kill", "deleted")
    with pytest.raises(errors.HopxError):
        sb.get_info()
    t.ok("get_info after kill", "410")
    t.write()


async def _collect(stream):
    return [m async for m in stream]


def test_python_sdk_async(local_server):
    t = Table("python-async hopx-ai 0.5.0 (AsyncSandbox)")

    async def scenario():
        kw = {"api_key": local_server.api_key, "base_url": local_server.base_url}
        sb = await AsyncSandbox.create(template="code-interpreter", **kw)
        t.ok("AsyncSandbox.create", sb.sandbox_id)
        try:
            assert (await sb.get_agent_info())["agent"] == "hopx-kernel-local"
            t.ok("get_agent_info", "ok")
            r = await sb.run_code("print(1 + 1)")
            assert r.stdout == "2\n"
            t.ok("run_code", "2")
            c = await sb.commands.run("echo a")
            assert c.stdout == "a\n"
            t.ok("commands.run", "a")
            bg = await sb.run_code_background("import time; time.sleep(30)")
            pid = bg["process_id"]
            listed = await sb.list_processes()  # GET /processes in the async SDK
            assert any(p.get("process_id") == pid for p in listed)
            t.ok("run_code_background + list_processes", "GET /processes")
            assert (await sb.kill_process(pid))["status"] == "killed"
            t.ok("kill_process", "POST /processes/{id}/kill")
            await sb.files.write("/tmp/x.txt", "x")
            assert await sb.files.read("/tmp/x.txt") == "x"
            t.ok("files write/read /tmp", "x")
            msgs = [m async for m in sb.run_code_stream("print('y')")]
            assert [m["type"] for m in msgs] == ["stdout", "result", "complete"]
            t.ok("run_code_stream", "stdout, result, complete")
        finally:
            await sb.kill()
        t.ok("kill", "deleted")

    run(scenario())
    t.write()


def test_processes_die_with_their_sandbox(local_server):
    """A background process still running when its sandbox ends is killed with it."""
    kw = {"api_key": local_server.api_key, "base_url": local_server.base_url}
    sb = Sandbox.create(template="code-interpreter", **kw)
    sb.run_code_background("import time; time.sleep(300)")
    sb.commands.run("sleep 300", background=True)
    assert len(sb.list_processes()) == 2
    sb.kill()  # the session's leak gate fails the run if either sleep outlives this
    assert os.environ.get("HKT_RUN_ID")
