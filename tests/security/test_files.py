"""Hostile files and paths: FIFOs, sparse files, symlink races, huge bodies, bad paths.

Each attack runs from inside a sandbox (its code makes the trap) and from a client; each
must be refused or bounded: no 500, no outside file touched or read, the server's memory
bounded, and another sandbox still answering within 1 s.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from .attack import (
    agent,
    answers_quickly,
    create,
    delete,
    flip_symlink,
    no_traceback_logged,
    one_line_4xx,
    rss_mb,
    run_py,
)

#: Attempts per race test (fixed: the suite's runtime and power do not vary by run).
RACE_ATTEMPTS = 240


@pytest.fixture(scope="module")
def pair(target):
    """Two sandboxes on the attacked server: the attacker and a bystander."""
    a, b = create(target), create(target)
    yield a, b
    delete(target, a)
    delete(target, b)


@pytest.fixture
def outside(tmp_path):
    """A folder outside every sandbox holding a secret file."""
    (tmp_path / "secret.txt").write_text("OUTSIDE-SECRET")
    return tmp_path


def test_a_fifo_hangs_nothing(target, pair):
    attacker, bystander = pair
    run_py(
        target, attacker, "import os\nfor n in ('out.txt', 'in.txt'):\n    os.path.exists(n) or os.mkfifo(n)"
    )
    started = time.monotonic()
    one_line_4xx(
        agent(target, attacker, "POST", "/files/write", json={"path": "out.txt", "content": "x"}, timeout=5)
    )
    for action in ("read", "download"):
        one_line_4xx(agent(target, attacker, "GET", f"/files/{action}", params={"path": "in.txt"}, timeout=5))
    one_line_4xx(
        agent(
            target,
            attacker,
            "POST",
            "/files/upload",
            timeout=5,
            files={"file": ("u", b"data")},
            data={"path": "out.txt"},
        )
    )
    assert time.monotonic() - started < 5
    answers_quickly(target, bystander)


def test_a_sparse_file_download_is_streamed(target, pair):
    attacker, bystander = pair
    run_py(target, attacker, "with open('sparse.bin', 'wb') as f:\n    f.truncate(1 << 30)")
    before = rss_mb(target)
    received, peak, took = 0, before, []
    with httpx.stream(
        "GET",
        f"{target.base_url}/files/download",
        params={"path": "sparse.bin"},
        headers={"Authorization": f"Bearer {attacker['auth_token']}"},
        timeout=30,
    ) as r:
        assert r.status_code == 200
        assert r.headers["Content-Length"] == str(1 << 30)
        for chunk in r.iter_bytes(1 << 20):
            received += len(chunk)
            if received % (64 << 20) < len(chunk):
                peak = max(peak, rss_mb(target))
                took.append(answers_quickly(target, bystander))
            if received >= 256 << 20:
                break  # a quarter is enough to see memory stay flat
    assert received >= 256 << 20
    assert peak - before < 100, f"server memory grew {peak - before:.0f} MB during a download"
    run_py(target, attacker, "import os; os.remove('sparse.bin')")


def test_a_large_upload_is_spooled_not_held(target, pair, tmp_path):
    attacker, bystander = pair
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(96 << 20)
    before = rss_mb(target)
    done: list = []

    def upload():
        with big.open("rb") as f:
            done.append(
                agent(
                    target,
                    attacker,
                    "POST",
                    "/files/upload",
                    timeout=60,
                    files={"file": ("big.bin", f)},
                    data={"path": "up/big.bin"},
                )
            )

    thread = threading.Thread(target=upload)
    thread.start()
    peak = before
    while thread.is_alive():
        peak = max(peak, rss_mb(target))
        answers_quickly(target, bystander)
        thread.join(0.05)
    assert done[0].status_code == 200, done[0].text
    assert done[0].json()["size"] == 96 << 20
    assert peak - before < 48, f"server memory grew {peak - before:.0f} MB for a 96 MB upload"
    run_py(
        target,
        attacker,
        "import os\nassert os.path.getsize('up/big.bin') == 96 << 20\nos.remove('up/big.bin')",
    )


def test_a_symlink_race_never_escapes(target, pair, outside):
    """Sandbox code flips ``link`` between a folder inside and one outside while the
    client writes, reads, removes and lists through it; nothing outside is touched."""
    attacker, _ = pair
    flip_symlink(target, attacker, outside, prepare="open('inside/secret.txt', 'w').write('inside')\n")
    calls = [
        ("POST", "/files/write", {"json": {"path": "link/secret.txt", "content": "pwned"}}),
        ("GET", "/files/read", {"params": {"path": "link/secret.txt"}}),
        ("GET", "/files/download", {"params": {"path": "link/secret.txt"}}),
        ("DELETE", "/files/remove", {"params": {"path": "link/secret.txt"}}),
        ("GET", "/files/list", {"params": {"path": "link"}}),
        ("POST", "/files/mkdir", {"json": {"path": "link/newdir"}}),
    ]
    try:
        with httpx.Client(
            base_url=target.base_url,
            timeout=30,
            headers={"Authorization": f"Bearer {attacker['auth_token']}"},
        ) as c:
            for i in range(RACE_ATTEMPTS):
                method, path, kw = calls[i % len(calls)]
                r = c.request(method, path, **kw)
                assert r.status_code < 500, r.text
                assert (
                    "OUTSIDE-SECRET" not in r.text
                    and "secret.txt" not in r.text
                    or path != "/files/list"
                    or str(outside) not in r.text
                )
                assert b"OUTSIDE-SECRET" not in r.content
    finally:
        run_py(target, attacker, "open('stop', 'w').close()")
    assert (outside / "secret.txt").read_text() == "OUTSIDE-SECRET"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    run_py(
        target,
        attacker,
        "import os, shutil, time\ntime.sleep(0.05)\n"
        "for n in ('stop', 'link', 'link.tmp'):\n"
        "    os.path.lexists(n) and os.remove(n)\n"
        "shutil.rmtree('inside', ignore_errors=True)",
    )


def test_bad_paths_are_clean_4xx(target, pair):
    attacker, _ = pair
    run_py(target, attacker, "import os\nos.path.lexists('loop') or os.symlink('loop', 'loop')")
    bad = [
        "loop",
        "loop/x",
        "a" * 300,
        "/workspace/" + "d/" * 200 + "f",
        "x\0y",
        "/etc/passwd",
        "../../etc/passwd",
        "/workspace/" + "a" * 5000,
    ]
    for path in bad:
        for method, endpoint in (("GET", "read"), ("GET", "download"), ("GET", "list"), ("DELETE", "remove")):
            if path == "loop" and endpoint == "remove":
                continue  # removing the link itself is fine
            one_line_4xx(agent(target, attacker, method, f"/files/{endpoint}", params={"path": path}))
        for endpoint in ("write", "mkdir"):
            one_line_4xx(
                agent(target, attacker, "POST", f"/files/{endpoint}", json={"path": path, "content": "x"})
            )
    for path in (1, [], {"a": 1}, True, "\ud800", "a/\udfff/b"):
        body = json.dumps({"path": path, "content": "x"})  # ASCII: lone surrogates escaped
        one_line_4xx(
            agent(
                target,
                attacker,
                "POST",
                "/files/write",
                content=body,
                headers={"Content-Type": "application/json"},
            )
        )
    r = agent(target, attacker, "GET", "/files/exists", params={"path": "loop"})
    assert r.status_code == 200
    no_traceback_logged(target)
