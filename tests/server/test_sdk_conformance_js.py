"""Conformance: the official JS SDK (``@hopx-ai/sdk`` 0.5.1) through ``node`` against the server.

The SDK is installed with npm into ``~/.cache/hopx-kernel/npm`` when missing (the test
needs node and npm; it does not skip when they are there). The method × result table is
printed (``-s``) and written to ``sdk-conformance-js.txt`` in the run's temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

SDK = "@hopx-ai/sdk@0.5.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hopx-kernel" / "npm"
SCRIPT = Path(__file__).with_name("js") / "conformance.cjs"


def _install() -> Path:
    modules = CACHE / "node_modules"
    if not (modules / "@hopx-ai" / "sdk" / "package.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--loglevel=error", SDK],
            check=True,
            timeout=120,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    return modules


def test_js_sdk(local_server):
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the JS SDK conformance test")
    modules = _install()
    env = {
        **os.environ,
        "NODE_PATH": str(modules),
        "HOPX_BASE_URL": local_server.base_url,
        "HOPX_API_KEY": local_server.api_key,
    }
    done = subprocess.run(["node", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    width = max(len(r["method"]) for r in rows)
    table = "js @hopx-ai/sdk 0.5.1\n" + "".join(
        f"  {r['method'].ljust(width)}  {'ok ' if r['ok'] else 'FAIL'} {r['result']}\n" for r in rows
    )
    Path(tempfile.gettempdir(), "sdk-conformance-js.txt").write_text(table)
    print("\n" + table)
    assert done.returncode == 0, done.stderr[-2000:]
    failed = [r for r in rows if not r["ok"]]
    assert not failed, table
    assert {r["method"] for r in rows} >= {"Sandbox.create", "commands.run", "kill"}
