"""Load: many kernels on one server, and one very large output, with memory watched."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from ..support.kernels import execute, start_kernel, stop_kernel
from ..support.local_server import start_server

KERNELS = 8
CELLS = 200
WARMUP = 20
#: Server RSS may grow this much between warm-up and the end (allocator noise, caches).
SERVER_MARGIN_MB = 40
BIG_MB = 200
KERNEL_GROWTH_MB = 60


@pytest.fixture(scope="module")
def server():
    srv = start_server()
    yield srv
    assert srv.stop() == 0


def cell_code(k: int, i: int) -> str:
    return (
        "import sys\nfrom IPython.display import display, HTML\n"
        f"print('k{k} c{i} out \\u2713', flush=True)\n"
        f"sys.stderr.write('k{k} c{i} err\\r\\n'); sys.stderr.flush()\n"
        f"display(HTML('<b>k{k} c{i}</b>'))\n"
        f"print('k{k} c{i} end')\n"
    )


def run_kernel(server, k: int, rss: list, warm: threading.Barrier) -> list[str]:
    env = {"HOPX_API_KEY": server.api_key, "HOPX_BASE_URL": server.base_url}
    km, kc = start_kernel(env)
    problems = []
    try:
        for i in range(CELLS):
            if i == WARMUP:
                warm.wait(120)
            cell = execute(kc, cell_code(k, i), timeout=120)
            want_out = f"k{k} c{i} out \u2713\nk{k} c{i} end\n"
            got = [
                (t, c.get("name"), c.get("text"), c.get("data", {}).get("text/html")) for t, c in cell.outputs
            ]
            if (
                cell.status != "ok"
                or cell.stream("stdout") != want_out
                or cell.stream("stderr") != f"k{k} c{i} err\r\n"
                or [h for t, _, _, h in got if t == "display_data"] != [f"<b>k{k} c{i}</b>"]
            ):
                problems.append(f"kernel {k} cell {i}: {got}")
            # order within the cell: first stdout line, stderr, display, last stdout line
            kinds = [t if t != "stream" else n for t, n, _, _ in got]
            if kinds.index("display_data") < kinds.index("stderr"):
                problems.append(f"kernel {k} cell {i}: out of order {kinds}")
    finally:
        stop_kernel(km, kc)
    return problems


def test_eight_kernels_two_hundred_cells_each(server):
    proc = psutil.Process(server.proc.pid)
    rss: list = []
    warm = threading.Barrier(KERNELS + 1)
    started = time.monotonic()
    with ThreadPoolExecutor(KERNELS) as pool:
        futures = [pool.submit(run_kernel, server, k, rss, warm) for k in range(KERNELS)]
        warm.wait(300)
        after_warmup = proc.memory_info().rss
        problems = [p for f in futures for p in f.result(timeout=600)]
    at_end = proc.memory_info().rss
    elapsed = time.monotonic() - started
    print(
        f"\nload: {KERNELS}x{CELLS} cells in {elapsed:.1f}s; server RSS after warm-up "
        f"{after_warmup / 2**20:.1f} MB, at end {at_end / 2**20:.1f} MB"
    )
    assert problems == []
    assert at_end - after_warmup < SERVER_MARGIN_MB * 2**20


def test_two_hundred_megabyte_output_keeps_the_kernel_bounded(server):
    env = {"HOPX_API_KEY": server.api_key, "HOPX_BASE_URL": server.base_url}
    km, kc = start_kernel(env)
    try:
        assert execute(kc, "print('warm')").status == "ok"
        kproc = psutil.Process(km.provisioner.process.pid)
        base = kproc.memory_info().rss
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], kproc.memory_info().rss)
                except psutil.Error:
                    return
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        line = "y" * 1023 + "\n"
        lines = BIG_MB * 1024
        code = f"import sys\nline = {line!r}\nfor _ in range({lines}):\n    sys.stdout.write(line)\n"
        want = hashlib.sha256()
        for _ in range(lines):
            want.update(line.encode())
        got, size = hashlib.sha256(), 0
        msg_id = kc.execute(code)
        deadline = time.monotonic() + 240
        idle = False
        while not idle:
            assert time.monotonic() < deadline, f"big cell did not finish; {size} bytes so far"
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except Exception:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                data = msg["content"]["text"].encode()
                got.update(data)
                size += len(data)
            elif kind == "status":
                idle = msg["content"]["execution_state"] == "idle"
            elif kind == "error":
                raise AssertionError(msg["content"])
        done.set()
        sampler.join(2)
        growth = (peak[0] - base) / 2**20
        print(
            f"\nbig output: {size / 2**20:.0f} MB; kernel RSS {base / 2**20:.0f} MB -> peak {peak[0] / 2**20:.0f} MB (+{growth:.0f} MB)"
        )
        assert size == lines * 1024 and got.hexdigest() == want.hexdigest()
        assert growth < KERNEL_GROWTH_MB
    finally:
        stop_kernel(km, kc)
