"""Plain tests of the server's pure helpers."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from hopx_kernel.errors import HopxKernelError
from hopx_kernel.server.domain.environment import MASK, mask_env, sandbox_env, validate_env
from hopx_kernel.server.domain.execution import env_changes, postlude_code, prelude_code
from hopx_kernel.server.domain.paths import host_root, locate, to_sandbox_path
from hopx_kernel.server.runtime import safefs
from hopx_kernel.server.runtime.ipython import death_reason
from hopx_kernel.server.server_errors import PathNotAllowed, ServerError
from hopx_kernel.server.web import auth
from hopx_kernel.server.web.bodies import agent_error_body, control_error_body, rfc3339
from hopx_kernel.server.web.control_plane import parse_create
from hopx_kernel.text import strip_ansi


def test_tokens():
    a, b = auth.new_token(), auth.new_token()
    assert a != b and len(a) >= 40
    assert auth.tokens_equal(a, a) and not auth.tokens_equal(a, b)
    assert not auth.tokens_equal(None, a) and not auth.tokens_equal("", a)


@pytest.mark.parametrize(
    "headers,key",
    [
        ({"X-API-Key": "k1"}, "k1"),
        ({"Authorization": "Bearer k2"}, "k2"),
        ({"Authorization": "bearer   k3 "}, "k3"),
        ({"X-API-Key": " ", "Authorization": "Bearer k4"}, "k4"),
        ({"Authorization": "Basic abc"}, None),
        ({"Authorization": "Bearer"}, None),
        ({}, None),
    ],
)
def test_api_key_from_headers(headers, key):
    assert auth.api_key_from_headers(headers) == key


@pytest.mark.parametrize(
    "host,ok",
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8888", True),
        ("127.4.5.6:1", True),
        ("localhost:80", True),
        ("LOCALHOST", True),
        ("[::1]:9000", True),
        ("[::1]", True),
        ("evil.example", False),
        ("evil.example:8888", False),
        ("10.0.0.1", False),
        ("localhost.evil.example", False),
        ("", False),
        (None, False),
        ("[::1", False),
    ],
)
def test_loopback_host(host, ok):
    assert auth.is_loopback_host(host) is ok


@pytest.mark.parametrize(
    "origin,ok",
    [
        ("http://127.0.0.1:8888", True),
        ("https://localhost", True),
        ("http://[::1]:3000", True),
        ("http://evil.example", False),
        ("null", False),
        ("file://", False),
        ("ftp://127.0.0.1", False),
        ("http://127.0.0.1:notaport", False),
        (None, False),
    ],
)
def test_loopback_origin(origin, ok):
    assert auth.is_loopback_origin(origin) is ok


def test_loopback_bind():
    assert auth.is_loopback_bind("127.0.0.1") and auth.is_loopback_bind("localhost")
    assert not auth.is_loopback_bind("0.0.0.0") and not auth.is_loopback_bind("192.168.1.2")


def test_paths(tmp_path: Path):
    root = tmp_path / "sb"
    (root / "d").mkdir(parents=True)
    assert locate("/workspace") == locate(None) == ("/workspace", "")
    assert locate("/workspace/d/x.txt") == locate("d/x.txt") == ("/workspace", "d/x.txt")
    assert locate("/workspace/d/../y") == ("/workspace", "y")
    assert host_root(root, "/workspace") == root
    assert to_sandbox_path(root, root / "d" / "x") == "/workspace/d/x"
    assert to_sandbox_path(root, root) == "/workspace"
    # /tmp and the home folder are the sandbox's own folders beside /workspace's
    assert locate("/tmp/a/b") == ("/tmp", "a/b") and host_root(root, "/tmp") == tmp_path / "sb.tmp"
    assert locate("~/n") == locate("/root/n") == ("/root", "n")
    assert host_root(root, "/root") == tmp_path / "sb.home"
    assert to_sandbox_path(root, tmp_path / "sb.tmp" / "a") == "/tmp/a"
    assert to_sandbox_path(root, tmp_path / "sb.home") == "/root"
    for bad in (
        "/etc/passwd",
        "/workspace/../etc",
        "../x",
        "/workspacex/y",
        "/tmpx/y",
        "/tmp/../etc",
        "~/../etc",
        "/home/user",
    ):
        with pytest.raises(PathNotAllowed) as info:
            locate(bad)
        assert info.value.status == 403 and info.value.code == "PATH_NOT_ALLOWED"
    with pytest.raises(ServerError) as info:
        locate("a\0b")
    assert info.value.status == 400
    # symlinks leaving a folder are refused when the directory is opened (safefs)
    (root / "link").symlink_to("/etc")
    with pytest.raises(ServerError) as info:
        safefs.open_dir(root, "link")
    assert info.value.status == 403 and info.value.code == "PATH_NOT_ALLOWED"
    (tmp_path / "sb.tmp").mkdir()
    (tmp_path / "sb.tmp" / "up").symlink_to(root)  # into /workspace: still out of /tmp
    with pytest.raises(ServerError) as info:
        safefs.open_dir(tmp_path / "sb.tmp", "up/d")
    assert info.value.status == 403
    with pytest.raises(ServerError) as info:
        safefs.open_dir(root, "nowhere")
    assert info.value.status == 404 and info.value.code == "DIRECTORY_NOT_FOUND"


def test_env_scrub_and_mask():
    env = {
        "PATH": "/bin",
        "HOPX_API_KEY": "k",
        "my_secret_token": "t",
        "AWS_ACCESS_KEY_ID": "a",
        "DB_PASSWORD": "p",
        "GCP_CREDENTIALS": "c",
        "JPY_PARENT_PID": "1",
        "JUPYTER_RUNTIME_DIR": "/r",
        "HOME": "/h",
        "MPLBACKEND": "agg",
    }
    assert sandbox_env(
        {
            **env,
            "DATABASE_URL": "pg://u:p@h",
            "GITHUB_PAT": "g",
            "NPM_AUTH": "n",
            "PGPASS": "p",
            "SSH_AUTH_SOCK": "/s",
            "LC_ALL": "C",
        }
    ) == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C"}
    masked = mask_env({"API_KEY": "x", "NAME": "y"})
    assert masked == {"API_KEY": MASK, "NAME": "y"}
    assert validate_env({"A": "1"}) == {"A": "1"}
    for bad in ([], {"A": 1}, {"": "x"}, {"A=B": "x"}, {"A": "x\0"}):
        with pytest.raises(ValueError):
            validate_env(bad)


def test_error_bodies():
    body = control_error_body("NOT_FOUND", "gone", "req_1", {"a": 1})
    assert body["error"] == {
        "message": "gone",
        "code": "NOT_FOUND",
        "request_id": "req_1",
        "details": {"a": 1},
    }
    assert body["message"] == "gone" and body["code"] == "NOT_FOUND"
    agent = agent_error_body("PATH_NOT_ALLOWED", "no", "req_2")
    assert agent["error"] == "no" and agent["message"] == "no" and agent["code"] == "PATH_NOT_ALLOWED"
    assert agent["timestamp"].endswith("Z")


def test_timestamps_and_ansi():
    ts = rfc3339(1.5)
    assert ts == "1970-01-01T00:00:01.500000Z"
    assert len(ts.split(".")[1]) == 7  # 6 digits + Z
    assert strip_ansi("\x1b[0;31mZeroDivisionError\x1b[0m: x") == "ZeroDivisionError: x"


def test_server_errors_share_the_root():
    assert issubclass(ServerError, HopxKernelError)
    assert issubclass(PathNotAllowed, ServerError)


def test_parse_create():
    assert parse_create({})["template_name"] == "code-interpreter"
    assert parse_create({"template_name": "python"})["template_name"] == "code-interpreter"
    assert parse_create({"template_id": "code-interpreter", "timeout_seconds": 5}) == {
        "template_name": "code-interpreter",
        "timeout_seconds": 5,
        "internet_access": True,
        "env_vars": {},
    }
    with pytest.raises(ServerError) as info:
        parse_create({"template_name": "ubuntu"})
    assert info.value.status == 404 and info.value.code == "TEMPLATE_NOT_FOUND"
    assert "code-interpreter" in info.value.message
    for bad in (
        {"timeout_seconds": "5"},
        {"timeout_seconds": True},
        {"internet_access": 1},
        {"env_vars": {"A": 1}},
    ):
        with pytest.raises(ServerError) as info:
            parse_create(bad)
        assert info.value.status == 400


def test_env_changes():
    assert env_changes({"A": "1", "B": "2"}, {"A": "1", "C": "3"}) == ({"B": "2"}, ["C"])
    assert env_changes({}, {}) == ({}, [])


def test_prelude_and_postlude_restore(tmp_path: Path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEEP", "old")
    monkeypatch.setenv("GONE", "x")
    ns: dict = {}
    exec(prelude_code({"GLOBAL": "g"}, ["GONE"], {"KEEP": "new", "TEMP": "t"}, "/"), ns)
    assert os.getcwd() == "/" and os.environ["KEEP"] == "new" and os.environ["TEMP"] == "t"
    assert "GONE" not in os.environ
    exec(postlude_code(), ns)
    assert [k for k in ns if not k.startswith("__")] == []
    assert os.getcwd() == str(tmp_path) and os.environ["KEEP"] == "old"
    assert "TEMP" not in os.environ and os.environ["GLOBAL"] == "g"
    monkeypatch.delenv("GLOBAL")


def test_death_reason():
    assert death_reason(-signal.SIGKILL, 512) == "killed by signal 9 (SIGKILL) — likely the 512 MB memory cap"
    assert death_reason(-signal.SIGKILL, None) == "killed by signal 9 (SIGKILL)"
    assert death_reason(3, None) == "exited with code 3"
