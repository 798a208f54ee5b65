"""[local] ``/local/handoff`` and ``/local/adopt`` on a real server: a kernel restart keeps
the embedded server, which then lives exactly as long as the new kernel process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import httpx

from hopx_kernel.local_server import LocalServer as Handle

from ...support.local_server import start_server
from ...support.server_helpers import agent, create, delete


def _stand_in_kernel() -> subprocess.Popen:
    """A process the server can live for, as it lives for a kernel process."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def _post(base_url: str, key: str, action: str, **body) -> httpx.Response:
    return httpx.post(f"{base_url}/local/{action}", json=body, headers={"X-API-Key": key}, timeout=30)


def test_an_adopted_server_serves_and_ends_with_its_adopter(tmp_path):
    old, new = _stand_in_kernel(), _stand_in_kernel()
    try:
        server = start_server("--pool-size", "0", "--handoff-grace", "120", parent_pid=old.pid)
        assert _post(server.base_url, server.api_key, "handoff").status_code == 200
        old.kill()
        old.wait()
        r = _post(server.base_url, server.api_key, "adopt", parent_pid=new.pid)
        assert r.status_code == 200 and r.json() == {"parent_pid": new.pid}
        sandbox = create(server)
        run = agent(server, sandbox, "POST", "/execute", json={"code": "print(6 * 7)", "timeout": 60})
        assert run.json()["stdout"] == "42\n"
        delete(server, sandbox)
        new.kill()
        new.wait()
        assert server.proc.wait(30) == 0  # the adopter ended: so does the server
    finally:
        for p in (old, new):
            p.kill()
            p.wait()


def test_an_offer_nobody_adopts_ends_the_server_and_removes_the_note(tmp_path):
    old = _stand_in_kernel()
    note = tmp_path / "kernel-1.json.hopx-server.json"
    note.write_text('{"api_key": "..."}')
    try:
        server = start_server("--pool-size", "0", "--handoff-grace", "1", parent_pid=old.pid)
        assert _post(server.base_url, server.api_key, "handoff", note=str(note)).status_code == 200
        old.kill()
        old.wait()
        assert server.proc.wait(30) == 0
        assert not note.exists()  # no key left behind
    finally:
        old.kill()
        old.wait()


def test_adoption_needs_an_offer_and_the_api_key():
    server = start_server("--pool-size", "0")
    try:
        refused = _post(server.base_url, server.api_key, "adopt", parent_pid=os.getpid())
        assert refused.status_code == 409 and refused.json()["code"] == "CONFLICT"
        assert _post(server.base_url, "not-the-key", "handoff").status_code == 401
        assert _post(server.base_url, "not-the-key", "adopt", parent_pid=os.getpid()).status_code == 401
    finally:
        assert server.stop() == 0


def test_a_server_that_belongs_to_no_kernel_has_no_handoff():
    root = tempfile.mkdtemp(prefix="hopx-handoff-test-")
    server = Handle.start(["--pool-size", "0", "--root", root, "--remove-root"], stderr=subprocess.DEVNULL)
    try:
        base_url, key = server.ready(60)
        assert _post(base_url, key, "handoff").status_code == 404
    finally:
        server.stop()
