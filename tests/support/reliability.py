"""Helpers of the reliability suites: cloud-mode environments, kernels, polling."""

from __future__ import annotations

import time

from .kernels import execute, running_kernel


def cloud_env(server, base_url: str | None = None, **extra: str) -> dict:
    return {"HOPX_API_KEY": server.api_key, "HOPX_BASE_URL": base_url or server.base_url, **extra}


kernel = running_kernel  # ``with kernel(env) as (km, kc):``


def sandbox_id(kc) -> str:
    """The current sandbox's id (provisioning one first if needed)."""
    assert execute(kc, "pass").status == "ok"
    text = execute(kc, "%hopx").stream()
    return next(line for line in text.splitlines() if line.startswith("sandbox id")).split()[-1]


def numbered_lines(text: str) -> list[int]:
    """The numbers of lines ``line <n>`` in ``text`` (complete lines only)."""
    return [
        int(line.split()[1])
        for line in text.splitlines(keepends=True)
        if line.startswith("line ") and line.endswith("\n")
    ]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # bounded poll of a condition
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
