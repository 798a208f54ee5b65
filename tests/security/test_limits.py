"""Hostile clients of the control plane and the agent plane: limits hold, nothing 500s,
no credential reaches the log."""

from __future__ import annotations

import json
import resource
import time

import httpx
import pytest

from ..support.local_server import start_server
from .attack import agent, create, delete, no_traceback_logged, one_line_4xx


def control(server, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(
        method, f"{server.base_url}{path}", timeout=30, headers={"X-API-Key": server.api_key}, **kw
    )


@pytest.mark.parametrize("value", [10**12, 2**63, 30 * 24 * 3600 + 1, -1, 1.5, "60", True])
def test_a_huge_timeout_is_a_clean_400_and_creates_nothing(target, value):
    before = control(target, "GET", "/v1/sandboxes").json()["data"]
    one_line_4xx(control(target, "POST", "/v1/sandboxes", json={"timeout_seconds": value}))
    assert control(target, "GET", "/v1/sandboxes").json()["data"] == before


def test_a_huge_timeout_through_put_is_a_clean_400(target):
    sb = create(target)
    try:
        for value in (10**12, 2**63, 0, -5, None):
            one_line_4xx(
                control(target, "PUT", f"/v1/sandboxes/{sb['id']}/timeout", json={"timeout_seconds": value})
            )
        r = control(
            target, "PUT", f"/v1/sandboxes/{sb['id']}/timeout", json={"timeout_seconds": 30 * 24 * 3600}
        )
        assert r.status_code == 200, r.text
        assert control(target, "GET", "/v1/sandboxes").status_code == 200
    finally:
        delete(target, sb)


def test_the_sandbox_cap_answers_429(target):
    made = []
    try:
        for _ in range(6):  # the target's --max-sandboxes
            r = control(target, "POST", "/v1/sandboxes", json={})
            if r.status_code == 429:
                break
            assert r.status_code == 201, r.text
            made.append(r.json())
        r = control(target, "POST", "/v1/sandboxes", json={})
        assert r.status_code == 429, r.text
        assert "--max-sandboxes" in r.json()["error"]["message"]
    finally:
        for sb in made:
            delete(target, sb)
    sb = create(target)  # room again once some ended
    delete(target, sb)


def test_out_of_file_descriptors_is_a_quick_503():
    """Under a low open-file limit, creates are refused at once, not hung."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (160, hard))
    try:
        server = start_server("--pool-size", "0", "--max-sandboxes", "100")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    made, refused = [], None
    try:
        for _ in range(40):
            started = time.monotonic()
            r = control(server, "POST", "/v1/sandboxes", json={})
            took = time.monotonic() - started
            if r.status_code != 201:
                refused = (r, took)
                break
            made.append(r.json())
        assert refused is not None, "40 sandboxes under a 160-descriptor limit"
        r, took = refused
        assert r.status_code == 503, r.text
        assert "file descriptors" in r.json()["error"]["message"]
        assert took < 5
        assert made, "not even one sandbox fit"
        assert agent(server, made[0], "POST", "/execute", json={"code": "print(1)"}).json()["stdout"] == "1\n"
    finally:
        for sb in made:
            delete(server, sb)
        assert server.stop() == 0


def test_bad_env_names_are_clean_400s(target):
    sb = create(target)
    try:
        for env in ({"A=B": "x"}, {"A\0B": "x"}, {"": "x"}, {"A": 1}, {"A": "x\0y"}):
            one_line_4xx(control(target, "POST", "/v1/sandboxes", json={"env_vars": env}))
            for method in ("PUT", "PATCH"):
                one_line_4xx(agent(target, sb, method, "/env", json={"env_vars": env}))
            body = json.dumps({"code": "print(1)", "env": env, "language": "bash"})
            one_line_4xx(
                agent(
                    target, sb, "POST", "/execute", content=body, headers={"Content-Type": "application/json"}
                )
            )
    finally:
        delete(target, sb)
    no_traceback_logged(target)


def test_tokens_in_query_strings_are_not_logged(target):
    sb = create(target)
    try:
        secrets = [sb["auth_token"], target.api_key]
        for name, value in (
            ("token", secrets[0]),
            ("api_key", secrets[1]),
            ("access_token", secrets[0]),
            ("X-API-Key", secrets[1]),
        ):
            httpx.get(f"{target.base_url}/files/read", params={"path": "x", name: value}, timeout=10)
            httpx.get(f"{target.base_url}/v1/sandboxes", params={name: value}, timeout=10)
    finally:
        delete(target, sb)
    log = target.stderr_path.read_text()
    assert "token=***" in log
    for secret in secrets:
        assert secret not in log
