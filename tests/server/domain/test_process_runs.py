"""What a ``/commands/*`` or ``/execute/background`` body asks to run
(hopx_kernel/server/domain/process_runs.py): literal bodies in, argv and errors out."""

from __future__ import annotations

import sys

import pytest

from hopx_kernel.server.domain.process_runs import code_argv, command_argv, timeout_of
from hopx_kernel.server.domain.processes import MAX_TIMEOUT
from hopx_kernel.server.server_errors import ServerError


def test_command_argv_as_the_sdks_and_the_docs_send_it():
    assert command_argv({"command": "bash", "args": ["-c", "echo hi"]}) == (
        ["bash", "-c", "echo hi"],
        "bash -c echo hi",
    )
    assert command_argv({"command": "ls -la /"}) == (["bash", "-c", "ls -la /"], "ls -la /")


@pytest.mark.parametrize(
    "body,code",
    [
        ({}, "MISSING_PARAMETER"),
        ({"command": "  "}, "MISSING_PARAMETER"),
        ({"command": 3}, "MISSING_PARAMETER"),
        ({"command": "ls", "args": "-l"}, "INVALID_REQUEST"),
        ({"command": "ls", "args": ["-l", 2]}, "INVALID_REQUEST"),
    ],
)
def test_command_argv_refuses(body, code):
    with pytest.raises(ServerError) as info:
        command_argv(body)
    assert (info.value.status, info.value.code) == (400, code)


def test_code_argv_per_language():
    assert code_argv({"code": "print(1)"}) == ([sys.executable, "-u", "-c", "print(1)"], "python", "print(1)")
    assert code_argv({"code": "echo", "language": "Bash"}) == (["bash", "-c", "echo"], "bash", "echo")
    assert code_argv({"code": "1", "language": "js"})[:2] == (["node", "-e", "1"], "javascript")
    for body, code in (
        ({}, "MISSING_PARAMETER"),
        ({"code": "x", "language": 1}, "INVALID_REQUEST"),
        ({"code": "x", "language": "ruby"}, "INVALID_REQUEST"),
    ):
        with pytest.raises(ServerError) as info:
            code_argv(body)
        assert (info.value.status, info.value.code) == (400, code)


def test_timeout_of():
    assert timeout_of({}, 30.0) == 30.0
    assert timeout_of({"timeout": None}, 30.0) == 30.0
    assert timeout_of({"timeout": 5}, 30.0) == 5.0
    assert timeout_of({"timeout": 0}, 30.0) == MAX_TIMEOUT  # 0: no limit of its own, the cap
    assert timeout_of({"timeout": 10**9}, 30.0) == MAX_TIMEOUT
    for bad in ("5", True, -1, float("nan")):
        with pytest.raises(ServerError) as info:
            timeout_of({"timeout": bad}, 30.0)
        assert info.value.status == 400
