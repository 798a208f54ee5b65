"""RESULTS.md (markdown) and ratios.png (matplotlib, installed on demand)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import contenders as C
from . import latency as LAT
from .rows import Metric
from .stats import is_number, percentile, ratio, summary

ANALYSIS = Path(__file__).with_name("analysis.md")
VERSIONED = (
    "hopx-kernel",
    "hopx-ai",
    "ipykernel",
    "jupyter_client",
    "nbclient",
    "pyzmq",
    "tornado",
    "websockets",
    "ipython",
    "psutil",
)
CHART_ROWS = (
    "rt_pass",
    "runall_pass",
    "rt_1p1",
    "ttfo",
    "runall_ttfo",
    "mib50",
    "mib50_ttfb",
    "print200k",
    "start",
    "restart",
    "nb20",
    "nb20x8",
)


def fmt(x: float) -> str:
    if not is_number(x):
        return "n/a"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def stat(m: Metric, key: str) -> dict:
    vals = m.samples.get(key) or []
    s = summary(vals)
    if m.higher_is_better and vals:
        s["p95"] = percentile(vals, 5)  # the slow tail of a throughput
    return s


def median_ratio(m: Metric, key: str) -> float:
    if key == C.IPYKERNEL or C.IPYKERNEL not in m.samples or key not in m.samples:
        return math.nan
    return ratio(stat(m, key)["median"], stat(m, C.IPYKERNEL)["median"])


# ---------------------------------------------------------------------------- targets


def targets(metrics: dict[str, Metric]) -> list[tuple[str, str, dict[str, tuple[float, bool]]]]:
    """(target text, unit, {contender: (value, met)}) for the HopX kernel contenders."""
    out = []

    def add(text, unit, mid, fn, ok):
        m = metrics.get(mid)
        if m is None:
            return
        res = {}
        for key in (C.EMBEDDED, C.CLOUD):
            if key in m.samples:
                v = fn(m, key)
                res[key] = (v, is_number(v) and ok(v), ok.limit)
        out.append((text, unit, res))

    def le(limit):
        f = lambda v: v <= limit  # noqa: E731
        f.limit = limit
        return f

    def ge(limit):
        f = lambda v: v >= limit  # noqa: E731
        f.limit = limit
        return f

    med = lambda m, k: stat(m, k)["median"]  # noqa: E731
    add("round trip `pass` ≤ 2.0× ipykernel", "×", "rt_pass", median_ratio, le(2.0))
    add(
        "Run All: round trip `pass` ≤ 2.0× ipykernel (moonshot 1.5×)",
        "×",
        "runall_pass",
        median_ratio,
        le(2.0),
    )
    add("Run All: first output ≤ 20 ms", "ms", "runall_ttfo", med, le(20))
    add("Run All: first output from stderr ≤ 20 ms", "ms", "runall_ttfo_err", med, le(20))
    add("first output after a flood ≤ 20 ms", "ms", "runall_ttfo_flood", med, le(20))
    add("widget update round trip ≤ 2.0× ipykernel", "×", "widget_echo", median_ratio, le(2.0))
    add("time to first output ≤ 0.1× ipykernel", "×", "ttfo", median_ratio, le(0.1))
    add("time to first output ≤ 20 ms", "ms", "ttfo", med, le(20))
    add("50 MiB throughput ≥ 0.8× ipykernel", "×", "mib50", median_ratio, ge(0.8))
    add("50 MiB first byte ≤ 50 ms", "ms", "mib50_ttfb", med, le(50))
    add("200k print lines ≥ 1.0× ipykernel", "×", "print200k", median_ratio, ge(1.0))
    add("kernel start → first result ≤ 2.0× ipykernel", "×", "start", median_ratio, le(2.0))
    add("new notebook → idle ≤ 1.3× ipykernel", "×", "start_idle", median_ratio, le(1.3))
    add("restart → first result ≤ 1.5× ipykernel", "×", "restart", median_ratio, le(1.5))
    add("memory of kernel + sandbox ≤ 1.6× ipykernel", "×", "mem_total", median_ratio, le(1.6))
    add("kernel RSS growth during the 50 MiB cell ≤ 20 MB", "MB", "rss_kernel", med, le(20))
    add("kernel overhead over raw SDK stream, `pass` ≤ 3 ms/cell", "ms", "ovh_pass", med, le(3))
    add("kernel overhead over raw SDK stream, `1+1` ≤ 3 ms/cell", "ms", "ovh_1p1", med, le(3))
    return out


# ---------------------------------------------------------------------------- environment


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = next(
            line.split(":")[1].strip()
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem = "?"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    try:
        import zmq

        out["libzmq"] = zmq.zmq_version()
    except ImportError:
        pass
    return out


def git_rev() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "hopx_kernel"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent.parent,
            timeout=5,
        ).stdout.strip()
        return rev + (" + uncommitted changes in hopx_kernel/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


# ---------------------------------------------------------------------------- markdown


def markdown(metrics: list[Metric], info: dict) -> str:
    by_id = {m.id: m for m in metrics}
    L = []
    L.append("# Benchmark: HopX kernel vs local ipykernel vs the raw hopx-ai SDK stream\n")
    if info.get("provisional"):
        L.append(f"> **Provisional figures.** {info['provisional']}\n")
    L.append(
        f"Generated by `{info['command']}` on {info['date']} "
        f"in {info['elapsed']:.0f} s (git {info['git']}).\n"
    )
    mach = machine()
    L.append(
        f"Machine: {mach['cpus']} CPUs ({mach['cpu']}), {mach['memory']} RAM, "
        f"{mach['platform']}, Python {mach['python']}. "
        f"Load average before / after the run (after includes the benchmark itself): {info['load_before']} / {info['load_after']}.\n"
    )
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".\n")
    L.append(
        "Contenders, alternated inside every row (ABCD ABCD …): "
        + "; ".join(f"**{C.LABELS[k]}** (`{k}`)" for k in C.ALL)
        + ". "
        "Kernels are driven with jupyter_client's `BlockingKernelClient`, the SDK row with "
        "`hopx_ai.AsyncSandbox.run_code_stream(code, timeout=120, working_dir=None)` "
        "(`working_dir=None` so it sends the same execute frame as the kernel; the SDK "
        "default `'/workspace'` makes the server run two extra silent bookkeeping "
        "executions per cell), cloud mode and the SDK against the same separately "
        "started `hopx-kernel serve`. Times are `time.perf_counter()` in the bench "
        "process after warm-up. MB = 10^6 bytes.\n"
    )
    L.append(f"Samples (warm-up + measured): {info['plan']}.\n")
    L.append(
        "Each cell: **median** (p95) and, in the × column, median ÷ local ipykernel's "
        "median. For MB/s rows the bracket is the slow tail (5th percentile). "
        "`n/a`: not applicable to that contender.\n"
    )
    L.append("## Results\n")
    head = (
        "| row | unit | "
        + " | ".join(f"{C.LABELS[k]} | ×" if k != C.IPYKERNEL else C.LABELS[k] for k in C.ALL)
        + " |"
    )
    L.append(head)
    L.append("|" + "---|" * (2 + 1 + 2 * (len(C.ALL) - 1)))
    for m in metrics:
        if m.id.startswith("lat_"):
            continue
        cells = [m.title, m.unit]
        for key in C.ALL:
            if key in m.samples and m.samples[key]:
                s = stat(m, key)
                cells.append(f"**{fmt(s['median'])}** ({fmt(s['p95'])})")
            else:
                cells.append("n/a")
            if key != C.IPYKERNEL:
                r = median_ratio(m, key)
                cells.append(f"{r:.2f}×" if is_number(r) else "–")
        L.append("| " + " | ".join(cells) + " |")
    notes = [(m, k, v) for m in metrics for k, v in m.notes.items() if not m.id.startswith("lat_")]
    if notes:
        L.append("")
        for m, k, v in notes:
            L.append(f"- {m.id} / {C.LABELS[k]}: {v}")
    L += latency_section(by_id)
    L.append("\n## Targets\n")
    L.append("| target | " + " | ".join(C.LABELS[k] for k in (C.EMBEDDED, C.CLOUD)) + " |")
    L.append("|---|---|---|")
    for text, unit, res in targets(by_id):
        cells = [text]
        for key in (C.EMBEDDED, C.CLOUD):
            if key in res:
                v, ok, limit = res[key]
                miss = "" if ok or not is_number(v) else f" by {fmt(abs(v - limit))} {unit}"
                cells.append(f"{fmt(v)} {unit} — {'met' if ok else '**missed**' + miss}")
            else:
                cells.append("n/a")
        L.append("| " + " | ".join(cells) + " |")
    if info.get("chart"):
        L.append(f"\n![ratios to local ipykernel]({info['chart']})\n")
    L.append("\n## Analysis\n")
    if ANALYSIS.exists():
        L.append(ANALYSIS.read_text().strip() + "\n")
    else:
        L.append(
            "> PLACEHOLDER — to be filled from profiling (bench/analysis.md is "
            "included here verbatim when it exists).\n"
        )
    return "\n".join(L) + "\n"


def latency_section(by_id: dict[str, Metric]) -> list[str]:
    """The far-away-sandbox table: ms per back-to-back cell, and round trips beyond the
    contender's own cost at 0 ms RTT (same TLS mode)."""
    rows = [
        m
        for m in by_id.values()
        if m.id.startswith("lat_") and not m.id.startswith(("lat_start_", "lat_nb_"))
    ]
    if not rows:
        return []
    L = [
        "\n## A far-away sandbox: back-to-back cells through a delaying proxy\n",
        "Cells of `pass` sent one after another on one kernel (each the moment the last went "
        "idle) to `hopx-kernel serve` behind `bench/netdelay.py`, a loopback TCP proxy that "
        "holds every chunk back by half the round trip in each direction; control plane and "
        "agent both go through it (`--public-url`). TLS rows: `serve --tls-cert/--tls-key` "
        "with a throwaway CA (trustme), trusted through `HOPX_CA_BUNDLE` (kernel) and "
        "`SSL_CERT_FILE` (SDK). The proxy accepts TCP at once, so a connect's TCP handshake "
        "costs no round trip here (it costs one more on a real network). Each cell: **median** "
        "ms per cell and, after =, the round trips beyond that contender's own median at 0 ms "
        "RTT. The notebook column: nbclient runs 20 `x = i` cells on the kernel (after one warm-up "
        "cell); ms per cell. Floor: 1 RTT + the kernel's cost at 0 ms. Goal: ≤ 1.2 RTT + local cost.\n",
        "| RTT | TLS | "
        + " | ".join(LAT.LABELS[k] for k in LAT.KEYS)
        + " | kernel, 20-cell notebook via nbclient | floor |",
        "|---|---|" + "---|" * (len(LAT.KEYS) + 2),
    ]
    for m in sorted(rows, key=lambda m: (m.id.endswith("_tls"), float(m.notes.get("rtt_ms", 0)))):
        rtt = float(m.notes.get("rtt_ms", "nan"))
        near = by_id.get("lat_0" + ("_tls" if m.id.endswith("_tls") else ""))
        cells = [f"{rtt:g} ms", "yes" if m.id.endswith("_tls") else "no"]
        for key in LAT.KEYS:
            vals = m.samples.get(key)
            if not vals:
                cells.append("n/a")
                continue
            med = stat(m, key)["median"]
            text = f"**{fmt(med)}** ms"
            if near is not None and near.samples.get(key) and rtt > 0:
                text += f" = {LAT.in_rtt(med, stat(near, key)['median'], rtt):.2f} RTT"
            cells.append(text)
        tls_tag = "_tls" if m.id.endswith("_tls") else ""
        nb, nb0 = by_id.get("lat_nb_" + m.id[4:]), by_id.get("lat_nb_0" + tls_tag)
        if nb is not None and nb.samples.get(LAT.KERNEL):
            med = stat(nb, LAT.KERNEL)["median"]
            text = f"**{fmt(med)}** ms/cell"
            if nb0 is not None and nb0.samples.get(LAT.KERNEL) and rtt > 0:
                text += f" = {LAT.in_rtt(med, stat(nb0, LAT.KERNEL)['median'], rtt):.2f} RTT"
            cells.append(text)
        else:
            cells.append("n/a")
        local = stat(near, LAT.KERNEL)["median"] if near and near.samples.get(LAT.KERNEL) else math.nan
        cells.append(f"{fmt(rtt + local)} ms" if is_number(local) else "n/a")
        L.append("| " + " | ".join(cells) + " |")
    starts = sorted(
        (m for m in by_id.values() if m.id.startswith("lat_start_")),
        key=lambda m: (m.id.endswith("_tls"), float(m.notes.get("rtt_ms", 0))),
    )
    if starts:
        L += [
            "",
            "Start through the same proxy: kernel start (its process start included) → "
            "first `1+1` result, against the SDK's `AsyncSandbox.create` → first result on "
            "the same rig (a sandbox create, a health check and one execution). Goal at "
            "80 ms: kernel ≤ sandbox create + 3 RTT, the create being the SDK's "
            "`AsyncSandbox.create` call alone. The local server's create starts the sandbox's "
            "IPython unless a warm one waits (a pool of 1, refilled before each sample). "
            "The kernel's path (cloud mode): the create goes out on a thread first thing "
            "at process start, while the kernel's Python imports ipykernel "
            "(`early_sandbox.py`); `kernel_info` answers at once, never waiting for the "
            "sandbox; once created, the first cell's socket opens while that thread asks "
            "`/health`, then the kernel channel opens, then the cell runs: create + 3 RTT "
            "when the create is the slow part. A frontend's own start costs as much as a "
            "local kernel's (last column: a local ipykernel, no network at all): the process "
            "start (~0.25 s of imports), ZeroMQ's reconnect (its sockets retry every 0.1 s "
            "until the kernel binds) and jupyter_client's 0.2 s of IOPub quiet after "
            "`kernel_info`; the first cell waits for that, then for its round trip. When "
            "the create + 2 RTT takes less than that local start, as with this warm local "
            "server, the local start decides.",
            "",
            "| RTT | TLS | kernel start → first result | SDK create → first result "
            "| goal: SDK create + 3 RTT | kernel − goal | local ipykernel start → first result |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in starts:
            rtt = float(m.notes.get("rtt_ms", "nan"))
            k, c, create, local = (
                stat(m, key)["median"] if m.samples.get(key) else math.nan
                for key in (LAT.KERNEL, LAT.SDK, LAT.CREATE, LAT.LOCAL)
            )
            goal = create + 3 * rtt
            beyond = "–"
            if is_number(k) and is_number(goal):
                beyond = f"{fmt(k - goal)} ms" + (f" = {(k - goal) / rtt:.1f} RTT" if rtt > 0 else "")
            L.append(
                f"| {rtt:g} ms | {'yes' if m.id.endswith('_tls') else 'no'} | "
                f"**{fmt(k)}** ms | **{fmt(c)}** ms | {fmt(goal)} ms | {beyond} | {fmt(local)} ms |"
            )
    return L


# ---------------------------------------------------------------------------- chart


def ensure_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401

        return True
    except ImportError:
        pass
    print("bench: installing matplotlib for the chart (optional extra 'bench')", flush=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib>=3.8"])
    if r.returncode != 0:
        return False
    import importlib

    importlib.invalidate_caches()
    try:
        import matplotlib  # noqa: F401

        return True
    except ImportError:
        return False


def chart(metrics: list[Metric], path: Path) -> bool:
    if not ensure_matplotlib():
        print("bench: no matplotlib; skipping the chart", file=sys.stderr)
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [m for m in metrics if m.id in CHART_ROWS and C.IPYKERNEL in m.samples]
    keys = [k for k in (C.EMBEDDED, C.CLOUD, C.SDK)]
    fig, ax = plt.subplots(figsize=(11, 5), dpi=100)
    width = 0.8 / len(keys)
    for j, key in enumerate(keys):
        xs, ys = [], []
        for i, m in enumerate(rows):
            r = median_ratio(m, key)
            if is_number(r) and r > 0:
                xs.append(i + (j - (len(keys) - 1) / 2) * width)
                ys.append(r)
        ax.bar(xs, ys, width, label=C.LABELS[key])
        for x, y in zip(xs, ys, strict=True):
            ax.text(x, y, f"{y:.2g}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(
        [f"{m.id}\n({'higher' if m.higher_is_better else 'lower'} better)" for m in rows], fontsize=8
    )
    ax.set_ylabel("median ÷ local ipykernel median (log)")
    ax.set_title("HopX kernel and SDK stream relative to local ipykernel (1.0 = same)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
