"""Each measurement. Contenders alternate inside every row (ABCD ABCD ...) to cancel drift.

A row function returns a list of :class:`Metric`, one per reported table row, with the
raw samples of every contender that has one.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from dataclasses import dataclass, field

from . import contenders as C

MIB50 = 50 * 1024 * 1024
CODE_MIB50 = "import sys\n_c = 'x' * 65536\nfor _ in range(800):\n    sys.stdout.write(_c)\n"
CODE_PRINT = "for i in range(200000):\n    print('line', i)\n"
PRINT_CHARS = sum(len(f"line {i}\n") for i in range(200000))
CODE_TTFO = "print('x'); time.sleep(1)"


@dataclass
class Metric:
    id: str
    title: str
    unit: str
    higher_is_better: bool = False
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)


@dataclass
class Plan:
    """Sample counts (warm-up, samples) per row group."""

    rt: tuple[int, int] = (30, 300)
    ttfo: tuple[int, int] = (1, 6)
    mib50: tuple[int, int] = (1, 5)
    print200k: tuple[int, int] = (1, 4)
    start: tuple[int, int] = (1, 8)
    restart: tuple[int, int] = (1, 6)
    nb: tuple[int, int] = (1, 5)
    nb8: tuple[int, int] = (0, 3)
    runall: tuple[int, int] = (10, 100)
    lat: tuple[int, int] = (5, 30)
    lat_starts: int = 3  # kernel starts / SDK creates per latency setting
    lat_notebooks: int = 2  # 20-cell nbclient notebooks per latency setting
    widget: tuple[int, int] = (20, 200)
    batch: int = 8  # notebooks run concurrently in the batch row
    pause: float = 0.3  # seconds between throughput cells (ipykernel flush-timer artefact)

    @classmethod
    def smoke(cls) -> Plan:
        return cls(
            rt=(3, 10),
            ttfo=(0, 1),
            mib50=(0, 1),
            print200k=(0, 1),
            start=(0, 1),
            restart=(0, 1),
            nb=(0, 1),
            nb8=(0, 1),
            runall=(2, 8),
            lat=(2, 8),
            lat_starts=1,
            lat_notebooks=0,
            widget=(2, 8),
            batch=4,
            pause=0.1,
        )


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------- per-cell rows


def round_trips(live: dict, plan: Plan) -> list[Metric]:
    """``pass`` → idle and ``1+1`` → execute_result, plus row 3 − row 4 (kernel overhead)."""
    m_pass = Metric("rt_pass", "round trip `pass` (request → idle)", "ms")
    m_1p1 = Metric("rt_1p1", "round trip `1+1` (request → execute_result)", "ms")
    warm, n = plan.rt
    for code, metric, attr in (("pass", m_pass, "total"), ("1+1", m_1p1, "result")):
        for i in range(warm + n):
            for key, c in live.items():
                value = getattr(c.run(code), attr) * 1e3
                if i >= warm:
                    metric.add(key, value)
    return [m_pass, m_1p1]


def widget_echo(live: dict, plan: Plan) -> list[Metric]:
    """A widget update's round trip: the frontend's ``comm_msg`` → ipywidgets 8's
    ``echo_update`` on iopub (through the kernel channel for the HopX kernels)."""
    m = Metric("widget_echo", "widget update round trip (frontend `comm_msg` → echo)", "ms")
    kernels = {k: c for k, c in live.items() if k in C.KERNELS}
    comm = {}
    for key, c in kernels.items():
        out = c.run("import ipywidgets as _w\n_s = _w.IntSlider()\nprint(_s.model_id)", keep_outputs=True)
        comm[key] = "".join(x["text"] for t, x in out.outputs if t == "stream").strip()
    warm, n = plan.widget
    for i in range(warm + n):
        for key, c in kernels.items():
            value = C.widget_round_trip(c.kc, comm[key], i % 100) * 1e3
            if i >= warm:
                m.add(key, value)
    return [m]


def overhead(metrics: dict[str, Metric]) -> list[Metric]:
    """Kernel overhead over the raw SDK stream: per-sample (cloud − SDK), paired by index."""
    out = []
    for src, title in (
        ("rt_pass", "kernel overhead over SDK, `pass` (cloud − SDK)"),
        ("rt_1p1", "kernel overhead over SDK, `1+1` (cloud − SDK)"),
    ):
        m = metrics.get(src)
        if m is None or C.CLOUD not in m.samples or C.SDK not in m.samples:
            continue
        o = Metric(src.replace("rt_", "ovh_"), title, "ms")
        for a, b in zip(m.samples[C.CLOUD], m.samples[C.SDK], strict=False):  # (pairs while both have)
            o.add(C.CLOUD, a - b)
        out.append(o)
    return out


def ttfo(live: dict, plan: Plan) -> list[Metric]:
    m = Metric("ttfo", "time to first output, `print('x'); time.sleep(1)` (no flush)", "ms")
    for c in live.values():
        c.run("import time")
    warm, n = plan.ttfo
    for i in range(warm + n):
        for key, c in live.items():
            value = c.run(CODE_TTFO).first_stream * 1e3
            if i >= warm:
                m.add(key, value)
    return [m]


CODE_B2B = "print('x'); time.sleep(0.05)"
CODE_B2B_ERR = "sys.stderr.write('x\\n'); time.sleep(0.05)"
CODE_FLOOD = "sys.stdout.write('y' * 2_000_000)"


def run_all(live: dict, plan: Plan) -> list[Metric]:
    """ "Run All": cells sent one after another on one kernel, each the moment the last went
    idle (contenders take turns by block, not by cell, so no pause creeps in)."""
    m_pass = Metric("runall_pass", "Run All: round trip `pass`, consecutive cells", "ms")
    m_out = Metric("runall_ttfo", "Run All: first output, consecutive `print('x'); sleep(0.05)`", "ms")
    m_err = Metric("runall_ttfo_err", "Run All: first output from stderr, consecutive cells", "ms")
    m_flood = Metric("runall_ttfo_flood", "first output of the cell after a 2 MB flood", "ms")
    for c in live.values():
        c.run("import sys, time")
    warm, n = plan.runall
    block = 10  # cells in a row per contender; contenders rotate by block to cancel drift
    for c in live.values():
        for _ in range(warm):
            c.run("pass")
    for start in range(0, n, block):
        for key, c in live.items():
            for _ in range(min(block, n - start)):
                m_pass.add(key, c.run("pass").total * 1e3)
    for code, metric in ((CODE_B2B, m_out), (CODE_B2B_ERR, m_err)):
        for _ in range(max(1, n // 25)):
            for key, c in live.items():
                for i in range(1 + 4):  # the first of a block follows other code: not counted
                    v = c.run(code).first_stream * 1e3
                    if i >= 1:
                        metric.add(key, v)
    for _ in range(max(2, n // 8)):
        for key, c in live.items():
            c.run(CODE_FLOOD)
            m_flood.add(key, c.run(CODE_B2B).first_stream * 1e3)
    return [m_pass, m_out, m_err, m_flood]


def _throughput(
    live: dict, plan: Plan, code: str, chars: int, prefix: str, what: str, warmn: tuple[int, int], rss: bool
) -> list[Metric]:
    mbs = Metric(prefix, f"{what}: throughput", "MB/s", higher_is_better=True)
    msgs = Metric(prefix + "_msgs", f"{what}: iopub stream messages", "msgs")
    ttfb = Metric(prefix + "_ttfb", f"{what}: time to first byte", "ms")
    k_rss = Metric("rss_kernel", "kernel RSS growth during the 50 MiB cell (peak − before)", "MB")
    s_rss = Metric("rss_server", "server RSS growth during the 50 MiB cell (peak − before)", "MB")
    warm, n = warmn
    for i in range(warm + n):
        for key, c in live.items():
            time.sleep(plan.pause)
            pids = {"kernel": c.pid, "server": c.server_pid()} if rss else {}
            with C.RssSampler(pids) as sampler:
                run = c.run(code)
            if run.stream_chars != chars:
                mbs.notes[key] = f"received {run.stream_chars} of {chars} chars"
            if i < warm:
                continue
            mbs.add(key, run.stream_chars / run.total / 1e6)
            msgs.add(key, run.n_stream)
            ttfb.add(key, run.first_stream * 1e3)
            if rss:
                if key != C.SDK:
                    k_rss.add(key, sampler.growth_mb("kernel"))
                if key != C.IPYKERNEL:
                    s_rss.add(key, sampler.growth_mb("server"))
    return [mbs, msgs, ttfb] + ([k_rss, s_rss] if rss else [])


def mib50(live: dict, plan: Plan) -> list[Metric]:
    return _throughput(
        live, plan, CODE_MIB50, MIB50, "mib50", "50 MiB as 64 KiB `sys.stdout.write`s", plan.mib50, rss=True
    )


def print200k(live: dict, plan: Plan) -> list[Metric]:
    return _throughput(
        live, plan, CODE_PRINT, PRINT_CHARS, "print200k", "200k `print` lines", plan.print200k, rss=False
    )


# ---------------------------------------------------------------------------- lifecycle rows


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """RSS (MB) and process count of ``pid`` and everything it started (embedded mode: the
    kernel, its local server and the sandbox's kernels)."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total / 1e6, len(procs)


#: seconds a new kernel is left idle before its memory is read (pool refills, warm-ups)
MEMORY_SETTLE = 2.0


def startup(keys: list[str], server, plan: Plan) -> list[Metric]:
    """Kernel start → idle (kernel_info answered: what a new notebook waits for) and → first
    `1+1` result (SDK: AsyncSandbox.create → first result); then the RSS of the kernel and
    every process it started (embedded: server and sandbox too), against ipykernel's."""
    m = Metric("start", "kernel start → first cell result", "s")
    idle = Metric("start_idle", "new kernel → idle (kernel_info answered)", "s")
    mem = Metric("mem_total", "memory of a kernel and its sandbox (RSS, all processes)", "MB")
    warm, n = plan.start
    for i in range(warm + n):
        for key in keys:
            if key == C.SDK:
                c = C.SdkContender(server)
                t0 = time.perf_counter()
                c.start()
                ready = math.nan
                run = c.run("1+1")
            else:
                c = C.KernelContender(key, server)
                t0 = time.perf_counter()
                c.start()
                ready = time.perf_counter() - t0
                run = c.run("1+1")
            value = run.sent + run.result - t0
            if i >= warm and key in (C.IPYKERNEL, C.EMBEDDED):
                time.sleep(MEMORY_SETTLE)
                rss, count = tree_rss_mb(c.pid)
                mem.add(key, rss)
                mem.notes[key] = f"{count} processes"
            c.stop()
            if i >= warm:
                m.add(key, value)
                if key != C.SDK:
                    idle.add(key, ready)
    return [m, idle, mem]


def restart(keys: list[str], server, plan: Plan) -> list[Metric]:
    """``restart_kernel()`` + wait_for_ready → first `1+1` result (kernels only)."""
    m = Metric("restart", "kernel restart → first cell result", "s")
    kernels = {}
    try:
        for key in keys:
            if key in C.KERNELS:
                kernels[key] = C.KernelContender(key, server)
                kernels[key].start()
                kernels[key].run("1+1")
        warm, n = plan.restart
        for i in range(warm + n):
            for key, c in kernels.items():
                t0 = time.perf_counter()
                c.restart()
                run = c.run("1+1")
                value = run.sent + run.result - t0
                if i >= warm:
                    m.add(key, value)
    finally:
        for c in kernels.values():
            c.stop()
    return [m]


# ---------------------------------------------------------------------------- nbclient rows


def _notebook(cells: int = 20):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"x = {i}") for i in range(cells)]
    return nb


async def _run_notebook(key: str, server) -> float:
    from nbclient import NotebookClient

    nb = _notebook()
    client = NotebookClient(
        nb, kernel_name=C.KERNEL_NAMES[key], timeout=120, resources={"metadata": {"path": "."}}
    )
    t0 = time.perf_counter()
    await client.async_execute(env=C.kernel_env(key, server), stderr=C.kernel_log())
    elapsed = time.perf_counter() - t0
    if len(nb.cells) != 20 or any(c.get("execution_count") is None for c in nb.cells):
        raise RuntimeError(f"{key}: notebook did not run every cell")
    return elapsed


def _sample(run, key: str) -> float:
    """One timed sample; a kernel that fails to come up is retried once (sample discarded).

    jupyter_client picks a kernel's TCP ports and the kernel binds them later, so with many
    processes starting at once another one can take a port in between (any kernel, stock
    ipykernel included). That is a property of the frontend library, not a measurement.
    """
    try:
        return asyncio.run(run(key))
    except RuntimeError as exc:
        if "Kernel didn't respond" not in str(exc) and "Kernel died" not in str(exc):
            raise
        print(f"[bench] {key}: a kernel did not come up ({exc}); sample retried", file=sys.stderr, flush=True)
        return asyncio.run(run(key))


def nbclient_rows(keys: list[str], server, plan: Plan) -> list[Metric]:
    batch = plan.batch
    one = Metric("nb20", "20-cell notebook via nbclient: total wall", "s")
    many = Metric("nb20x8", f"{batch} such notebooks concurrently: total wall", "s")
    keys = [k for k in keys if k in C.KERNELS]
    warm, n = plan.nb
    for i in range(warm + n):
        for key in keys:
            value = _sample(lambda k: _run_notebook(k, server), key)
            if i >= warm:
                one.add(key, value)
    warm, n = plan.nb8

    async def batch_run(key: str) -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(_run_notebook(key, server) for _ in range(batch)))
        return time.perf_counter() - t0

    for i in range(warm + n):
        for key in keys:
            value = _sample(batch_run, key)
            if i >= warm:
                many.add(key, value)
    return [one, many]


def finite(values) -> bool:
    return bool(values) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
