"""``/commands/*``, background executions, kill, ``/info``, ``/v1/templates``: bad input."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.support.server_helpers import agent, create, delete


@pytest.fixture
def sandbox(local_server):
    """A fresh sandbox per test (the tests here leave state behind)."""
    sb = create(local_server)
    yield sb
    delete(local_server, sb)


def _run(server, sb, command, **body):
    return agent(
        server, sb, "POST", "/commands/run", json={"command": "bash", "args": ["-c", command], **body}
    )


def test_a_command_that_times_out_is_one_408_with_its_output(local_server, sandbox):
    r = _run(local_server, sandbox, "echo started; sleep 60", timeout=1)
    body = r.json()
    assert r.status_code == 408 and body["code"] == "EXECUTION_TIMEOUT"
    assert body["stdout"] == "started\n" and "timed out after 1 s" in body["message"]


def test_fifty_megabytes_of_output_stops_the_command(local_server, sandbox):
    r = _run(local_server, sandbox, "head -c 52428800 /dev/zero | tr '\\0' x", timeout=60)
    body = r.json()
    assert r.status_code == 413 and "more than 8 MiB" in body["message"]
    assert len(body["stdout"]) <= 8 * 1024 * 1024


def test_paths_that_escape_are_refused(local_server, sandbox):
    for workdir in ("/workspace/../..", "/etc", "/tmp/../etc"):
        r = _run(local_server, sandbox, "pwd", workdir=workdir)
        assert r.status_code == 403 and r.json()["code"] == "PATH_NOT_ALLOWED", workdir
    _run(local_server, sandbox, "ln -s / out")  # a symlink out of /workspace
    r = agent(local_server, sandbox, "GET", "/files/read", params={"path": "/workspace/out/etc/passwd"})
    assert r.status_code == 403
    r = _run(local_server, sandbox, "pwd", workdir="/workspace/out")
    assert r.status_code == 403


def test_background_never_exiting_unknown_ids_and_kill_twice(local_server, sandbox):
    r = agent(
        local_server,
        sandbox,
        "POST",
        "/execute/background",
        json={"code": "while True: pass", "language": "python"},
    )
    pid = r.json()["process_id"]
    listed = agent(local_server, sandbox, "GET", "/execute/processes").json()["processes"]
    os_pid = next(p["pid"] for p in listed if p["process_id"] == pid)
    for method, path, kw in (
        ("POST", "/execute/kill/nope", {}),
        ("DELETE", "/execute/kill", {"params": {"process_id": "nope"}}),
        ("POST", "/processes/nope/kill", {}),
    ):
        r = agent(local_server, sandbox, method, path, **kw)
        assert r.status_code == 404 and r.json()["code"] == "PROCESS_NOT_FOUND", path
    r = agent(local_server, sandbox, "DELETE", "/execute/kill", json={"process_id": pid})
    assert r.status_code == 200 and r.json()["status"] == "killed"
    with pytest.raises(ProcessLookupError):
        os.kill(os_pid, 0)
    r = agent(local_server, sandbox, "POST", f"/execute/kill/{pid}")
    assert r.status_code == 409 and "already ended (killed)" in r.json()["error"]
    r = agent(local_server, sandbox, "POST", "/execute/background", json={"code": "1", "language": "go"})
    assert r.status_code == 400 and "go" in r.json()["error"]
    r = agent(
        local_server,
        sandbox,
        "POST",
        "/commands/background",
        json={"command": "sleep 1", "timeout": 1, "workdir": "/nowhere"},
    )
    assert r.status_code == 403


def test_info_and_templates(local_server, sandbox):
    info = agent(local_server, sandbox, "GET", "/info").json()
    assert info["vm_id"] == sandbox["id"] and info["features"]["stream_extensions"] == 1
    key = {"X-API-Key": local_server.api_key}
    listed = httpx.get(f"{local_server.base_url}/v1/templates", headers=key).json()
    assert [t["name"] for t in listed["data"]] == ["code-interpreter", "python"]
    r = httpx.get(f"{local_server.base_url}/v1/templates/nope", headers=key)
    message = r.json()["message"]
    assert r.status_code == 404 and r.json()["code"] == "TEMPLATE_NOT_FOUND"
    # the JS SDK turns a 404 saying "sandbox ... not found" into SandboxExpiredError
    assert not ("sandbox" in message.lower() and "not found" in message.lower())
    r = httpx.post(f"{local_server.base_url}/v1/sandboxes", headers=key, json={"template_name": "nope"})
    assert r.status_code == 404 and r.json()["message"] == message


def test_execute_timeout_body_has_a_message_and_the_partial_output(local_server, sandbox):
    r = agent(
        local_server,
        sandbox,
        "POST",
        "/execute",
        json={"code": "print('partial', flush=True)\nimport time\ntime.sleep(30)", "timeout": 1},
    )
    body = r.json()
    assert r.status_code == 408 and body["stdout"] == "partial\n"
    assert body["message"] == "execution exceeded its 1 s timeout and was interrupted"
