"""Cloud mode (HOPX_API_KEY + HOPX_BASE_URL) against a separately started `hopx-kernel serve`:
the same code path the HopX cloud takes."""

from __future__ import annotations

import json
import time

import pytest

from ..support.kernels import execute, running_kernel
from ..support.serve import Serve


@pytest.fixture(scope="module")
def serve():
    server = Serve("--token-ttl", "6")
    yield server
    server.stop()


def sandbox_id(kc) -> str:
    text = execute(kc, "%hopx").stream()
    line = next(ln for ln in text.splitlines() if ln.startswith("sandbox id"))
    return line.split()[-1]


def test_cloud_mode_runs_cells_and_deletes_its_sandbox_at_shutdown(serve):
    with running_kernel(serve.env()) as (km, kc):
        assert execute(kc, "print(2 + 2)").stream() == "4\n"
        info = execute(kc, "%hopx").stream()
        assert "cloud" in info and serve.base_url in info
        sid = sandbox_id(kc)
        assert serve.call("GET", f"/v1/sandboxes/{sid}")[0] == 200
    status, _ = serve.call("GET", f"/v1/sandboxes/{sid}")
    assert status in (404, 410)


def test_the_sandbox_sees_no_hopx_variable_key_or_token(serve):
    with running_kernel(serve.env(HOPX_ENV='{"VISIBLE": "yes"}')) as (km, kc):
        sid = sandbox_id(kc)
        _, obj = serve.call("GET", f"/v1/sandboxes/{sid}")
        token = obj["auth_token"]
        cell = execute(
            kc,
            "import os, json\nprint(json.dumps(dict(os.environ)))",
        )
        env = json.loads(cell.stream())
        assert env.get("VISIBLE") == "yes"
        assert not [k for k in env if "HOPX" in k.upper()]
        blob = json.dumps(env)
        assert serve.api_key not in blob and token not in blob


def test_a_wrong_key_gives_one_clear_line_and_the_kernel_stays_up(serve):
    with running_kernel({"HOPX_API_KEY": "not-the-key", "HOPX_BASE_URL": serve.base_url}) as (km, kc):
        for _ in range(2):
            cell = execute(kc, "print(1)")
            assert cell.status == "error"
            assert cell.reply["ename"] == "HopxAuthError"
            line = cell.reply["evalue"]
            assert "\n" not in line
            assert "rejected the API key" in line and "HOPX_API_KEY" in line
            assert "not-the-key" not in json.dumps(cell.outputs)
        assert kc.kernel_info(reply=True, timeout=10)["content"]["status"] == "ok"


def test_unreachable_control_plane_is_one_clear_line(serve):
    with running_kernel({"HOPX_API_KEY": "k", "HOPX_BASE_URL": "http://127.0.0.1:9"}) as (km, kc):
        cell = execute(kc, "print(1)")
        assert cell.status == "error"
        assert cell.reply["ename"] == "HopxUnreachable"
        assert "Could not reach HopX" in cell.reply["evalue"]


def test_an_expired_sandbox_is_explained_and_replaced(serve):
    with running_kernel(serve.env()) as (km, kc):
        assert execute(kc, "old = 1").status == "ok"
        sid = sandbox_id(kc)
        assert serve.call("DELETE", f"/v1/sandboxes/{sid}")[0] == 200
        cell = execute(kc, "print(old)")
        assert cell.status == "error"
        assert cell.reply["ename"] == "SandboxExpired"
        assert "new sandbox" in cell.reply["evalue"]
        again = execute(kc, "print('old' in dir())")
        assert again.stream() == "False\n"
        assert sandbox_id(kc) != sid


def test_the_token_is_refreshed_before_it_expires(serve):
    # the server issues 6-second tokens; cells keep working well past that
    with running_kernel(serve.env()) as (km, kc):
        assert execute(kc, "n = 0").status == "ok"
        started, cells = time.monotonic(), 0
        # more than two token lifetimes, however few cells a loaded machine gets through
        while time.monotonic() - started < 14 or cells < 10:
            cell = execute(kc, "n += 1\nimport time; time.sleep(0.5)")
            assert cell.status == "ok", cell.reply
            cells += 1
        assert int(execute(kc, "print(n)").stream()) == cells


def test_attach_mode_uses_an_existing_sandbox_and_never_deletes_it(serve):
    status, obj = serve.call("POST", "/v1/sandboxes", {"template_name": "code-interpreter"})
    assert status == 201
    sid = obj["id"]
    with running_kernel(serve.env(HOPX_SANDBOX_ID=sid)) as (km, kc):
        assert execute(kc, "shared = 'yes'").status == "ok"
        assert sandbox_id(kc) == sid
    assert serve.call("GET", f"/v1/sandboxes/{sid}")[0] == 200
    serve.call("DELETE", f"/v1/sandboxes/{sid}")
