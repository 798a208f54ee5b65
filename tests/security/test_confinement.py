"""Sandbox code against other sandboxes and the server: Landlock confinement, secrets.

These run wherever Landlock is available, and fail (rather than skip) where the kernel
should have it (Linux >= 5.13 listing ``landlock`` among its security modules).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import httpx
import psutil
import pytest

from hopx_kernel.server.runtime import confinement, jedi_cache

from ..support.local_server import KERNEL_MARK, start_server
from .attack import agent, create, delete

SECRET = "sk-test-9f2c1d0e-never-in-a-sandbox"


def _should_have_landlock() -> bool:
    release = tuple(int(x) for x in platform.release().split(".")[:2] if x.isdigit())
    try:
        lsm = Path("/sys/kernel/security/lsm").read_text()
    except OSError:
        lsm = ""
    return platform.system() == "Linux" and release >= (5, 13) and "landlock" in lsm


ABI = confinement.abi_version()
if ABI == 0 and not _should_have_landlock():
    pytest.skip("Landlock is not available on this machine's kernel", allow_module_level=True)


def test_landlock_is_available_where_the_kernel_has_it():
    assert ABI >= 1, "this kernel should offer Landlock, but landlock_create_ruleset failed"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A server whose environment holds secrets, with two sandboxes A and B."""
    env = {
        **os.environ,
        "OPENAI_API_KEY": SECRET,
        "DATABASE_URL": f"pg://u:{SECRET}@h/db",
        "GITHUB_PAT": SECRET,
    }
    server = start_server("--pool-size", "0", env=env)
    a, b = create(server), create(server)
    yield server, a, b
    delete(server, a)
    delete(server, b)
    assert server.stop() == 0


def py(server, sandbox, code: str) -> dict:
    r = agent(server, sandbox, "POST", "/execute", json={"code": code, "timeout": 60})
    assert r.status_code == 200, r.text
    return r.json()


def kernel_pids(server) -> list[int]:
    return [
        p.pid
        for p in psutil.Process(server.proc.pid).children(recursive=True)
        if KERNEL_MARK in " ".join(p.cmdline())
    ]


def test_health_and_log_say_how_sandboxes_are_isolated(secured):
    server, _, _ = secured
    features = httpx.get(f"{server.base_url}/health").json()["features"]
    assert features["isolation"].startswith(f"Landlock ABI {ABI}:")
    assert f"confined with Landlock (ABI {ABI})" in server.stderr_path.read_text()


def test_a_sandbox_cannot_touch_another_or_the_server(secured):
    server, a, b = secured
    assert py(server, b, "open('b-secret.txt', 'w').write('B-ONLY')")["success"]
    pids = kernel_pids(server)
    probe = f"""
import glob, os, json
here = os.getcwd()
root = os.path.dirname(here)
other = os.path.join(root, {b["id"]!r})
results = {{}}
def attempt(name, fn):
    try:
        value = fn()
        results[name] = 'ALLOWED ' + repr(value)[:200]
    except OSError as exc:
        results[name] = 'denied ' + type(exc).__name__
attempt('read B file', lambda: open(os.path.join(other, 'b-secret.txt')).read())
attempt('list B', lambda: os.listdir(other))
attempt('write B', lambda: open(os.path.join(other, 'planted.txt'), 'w').write('x'))
attempt('list root', lambda: os.listdir(root))
attempt('list kernels', lambda: os.listdir(os.path.join(root, '.kernels')))
attempt('write /tmp', lambda: open('/tmp/hopx-escape.txt', 'w').write('x'))
attempt('read server mem', lambda: open('/proc/{server.proc.pid}/mem', 'rb').read(1))
for pid in {pids!r}:
    if pid != os.getpid():
        attempt(f'environ {{pid}}', lambda: open(f'/proc/{{pid}}/environ').read())
        attempt(f'mem {{pid}}', lambda: open(f'/proc/{{pid}}/mem', 'rb').read(1))
print(json.dumps(results))
"""
    body = py(server, a, probe)
    results = json.loads(body["stdout"])
    for name in (
        "read B file",
        "list B",
        "write B",
        "list root",
        "list kernels",
        "write /tmp",
        "read server mem",
    ):
        assert results[name].startswith("denied"), (name, results[name])
    for name, outcome in results.items():
        if name.startswith("mem "):
            assert outcome.startswith("denied"), (name, outcome)
        if name.startswith("environ "):  # readable only without secrets: the allowlist
            assert SECRET not in outcome
    assert SECRET not in body["stdout"]
    assert not Path("/tmp/hopx-escape.txt").exists()
    assert (
        py(server, b, "print(sorted(os.listdir('.')) if (os := __import__('os')) else 0)")["stdout"]
        == "['b-secret.txt']\n"
    )


def test_no_secret_of_the_server_reaches_a_sandbox(secured):
    server, a, _ = secured
    code = (
        f"import os\nfound = [n for n, v in os.environ.items() if {SECRET!r} in v]\n"
        f"data = open('/proc/{server.proc.pid}/environ', 'rb').read()\n"
        f"print(found, {SECRET.encode()!r} in data)"
    )
    assert py(server, a, code)["stdout"] == "[] False\n"
    bash = agent(
        server,
        a,
        "POST",
        "/execute",
        json={"code": f"env; cat /proc/{server.proc.pid}/environ | tr '\\0' '\\n'", "language": "bash"},
    )
    assert SECRET not in bash.text


@pytest.mark.skipif(ABI < 6, reason="signal scoping needs Landlock ABI 6 (Linux 6.12)")
def test_a_sandbox_cannot_signal_the_server_or_another_sandbox(secured):
    server, a, b = secured
    others = [server.proc.pid] + [p for p in kernel_pids(server)]
    code = (
        f"import os\nout = []\nfor pid in {others!r}:\n"
        "    if pid == os.getpid():\n        continue\n"
        "    try:\n        os.kill(pid, 0)\n        out.append('ALLOWED')\n"
        "    except PermissionError:\n        out.append('denied')\nprint(set(out))"
    )
    assert py(server, a, code)["stdout"] == "{'denied'}\n"
    bash = agent(
        server,
        a,
        "POST",
        "/execute",
        json={"code": f"kill -0 {server.proc.pid} && echo ALLOWED || echo denied", "language": "bash"},
    )
    assert bash.json()["stdout"] == "denied\n"
    assert py(server, b, "print('alive')")["stdout"] == "alive\n"


WHEEL_MAKER = """
import zipfile, base64, hashlib
def rec(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return f'{name},sha256={digest},{len(data)}'
files = {
    'hopx_probe_pkg/__init__.py': b'WHERE = __file__\\n',
    'hopx_probe_pkg-0.1.dist-info/METADATA': b'Metadata-Version: 2.1\\nName: hopx-probe-pkg\\nVersion: 0.1\\n',
    'hopx_probe_pkg-0.1.dist-info/WHEEL': b'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
}
record = [rec(n, d) for n, d in files.items()] + ['hopx_probe_pkg-0.1.dist-info/RECORD,,']
with zipfile.ZipFile('hopx_probe_pkg-0.1-py3-none-any.whl', 'w') as z:
    for n, d in files.items():
        z.writestr(n, d)
    z.writestr('hopx_probe_pkg-0.1.dist-info/RECORD', '\\n'.join(record) + '\\n')
"""


def test_pip_install_goes_to_the_sandbox_and_is_importable_at_once(secured):
    server, a, b = secured
    assert py(server, a, WHEEL_MAKER)["success"]
    pip = py(server, a, "%pip install --no-index --quiet ./hopx_probe_pkg-0.1-py3-none-any.whl")
    assert "error" not in (pip["stdout"] + pip["stderr"]).lower(), pip
    where = py(
        server,
        a,
        "import hopx_probe_pkg, os; print(hopx_probe_pkg.WHERE.startswith(os.path.expanduser('~')))",
    )
    assert where["stdout"] == "True\n", where  # in the sandbox's own home, not the server's venv
    other = py(server, b, "import importlib.util; print(importlib.util.find_spec('hopx_probe_pkg'))")
    assert other["stdout"] == "None\n", other  # another sandbox does not see it


def test_normal_work_still_works_when_confined(secured):
    server, a, _ = secured
    code = """
import os, subprocess, tempfile, multiprocessing as mp, sys
open('data.txt', 'w').write('own folder')
with tempfile.NamedTemporaryFile('w', delete=False) as f:
    f.write('tmp')
os.makedirs(os.path.expanduser('~/.cache/x'), exist_ok=True)
open(os.devnull, 'w').write('x')
out = subprocess.run(['bash', '-c', 'echo sub > /dev/null; echo sub-ok'], capture_output=True,
                     text=True).stdout
with mp.Pool(2) as pool:
    squares = pool.map(abs, [-2, -3])
import IPython, json, sqlite3, ssl
print(out.strip(), squares, open('data.txt').read())
"""
    body = py(server, a, code)
    assert body["stdout"] == "sub-ok [2, 3] own folder\n", body
    pip = py(server, a, "%pip --version")
    assert pip["stdout"].startswith("pip "), pip
    bash = agent(
        server,
        a,
        "POST",
        "/execute",
        json={
            "code": "echo hi > note.txt && cat note.txt && mktemp >/dev/null && echo tmp-ok",
            "language": "bash",
        },
    ).json()
    assert bash["stdout"] == "hi\ntmp-ok\n", bash


def test_the_shared_completer_cache_is_read_only_to_sandboxes():
    folder = jedi_cache.ensure()  # made once per machine, by the first server at the latest
    assert folder is not None and any(folder.rglob("*.pkl")), "the completer cache was not made"
    server = start_server("--pool-size", "0")
    try:
        sandbox = create(server)
        probe = f"""
import os
target = {str(folder)!r}
print(os.path.isdir(target), len(os.listdir(target)) > 0)
try:
    open(os.path.join(target, 'planted.pkl'), 'wb').write(b'x')
    print('written')
except PermissionError:
    print('refused')
print('HOPX_JEDI_CACHE' in os.environ)
"""
        body = py(server, sandbox, probe)
        assert body["stdout"] == "True True\nrefused\nFalse\n", body  # readable, never writable
        assert not (folder / "planted.pkl").exists()
        delete(server, sandbox)
    finally:
        assert server.stop() == 0
