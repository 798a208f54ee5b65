"""``python -m bench [--smoke] [--only GROUPS] [--out bench/RESULTS.md]``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import psutil

from . import contenders as C
from . import latency, report, rows
from .rows import Metric, Plan
from .stats import median

GROUPS = ("rt", "runall", "ttfo", "mib50", "print200k", "start", "restart", "nbclient", "latency", "widget")
PER_CELL = {
    "rt": rows.round_trips,
    "runall": rows.run_all,
    "ttfo": rows.ttfo,
    "mib50": rows.mib50,
    "print200k": rows.print200k,
    "widget": rows.widget_echo,
}
#: --smoke fails when a HopX kernel misses one of these grossly (margins for a noisy 2-core
#: machine; the goals are 20 ms and 1.2 RTT): the 107 ms back-to-back regression must not
#: land silently again.
GUARD_FIRST_OUTPUT_MS = 60.0
GUARD_RTT_PER_CELL = 2.0
#: For --smoke: which contenders must have a number in each metric.
EXPECTED = {
    "rt_pass": C.ALL,
    "rt_1p1": C.ALL,
    "ovh_pass": (C.CLOUD,),
    "ovh_1p1": (C.CLOUD,),
    "ttfo": C.ALL,
    "mib50": C.ALL,
    "mib50_msgs": C.ALL,
    "mib50_ttfb": C.ALL,
    "rss_kernel": C.KERNELS,
    "rss_server": (C.EMBEDDED, C.CLOUD, C.SDK),
    "print200k": C.ALL,
    "print200k_msgs": C.ALL,
    "print200k_ttfb": C.ALL,
    "start": C.ALL,
    "start_idle": C.KERNELS,
    "mem_total": (C.IPYKERNEL, C.EMBEDDED),
    "restart": C.KERNELS,
    "nb20": C.KERNELS,
    "nb20x8": C.KERNELS,
    "runall_pass": C.ALL,
    "runall_ttfo": C.ALL,
    "runall_ttfo_err": C.ALL,
    "runall_ttfo_flood": C.ALL,
    "widget_echo": C.KERNELS,
    **{f"lat_{ms}{t}": latency.KEYS for ms in (0, 20, 80) for t in ("", "_tls")},
}
GROUP_OF = {
    "rt_pass": "rt",
    "rt_1p1": "rt",
    "ovh_pass": "rt",
    "ovh_1p1": "rt",
    "ttfo": "ttfo",
    "mib50": "mib50",
    "mib50_msgs": "mib50",
    "mib50_ttfb": "mib50",
    "rss_kernel": "mib50",
    "rss_server": "mib50",
    "print200k": "print200k",
    "print200k_msgs": "print200k",
    "print200k_ttfb": "print200k",
    "start": "start",
    "start_idle": "start",
    "mem_total": "start",
    "restart": "restart",
    "nb20": "nbclient",
    "nb20x8": "nbclient",
    "runall_pass": "runall",
    "runall_ttfo": "runall",
    "runall_ttfo_err": "runall",
    "runall_ttfo_flood": "runall",
    "widget_echo": "widget",
    **{f"lat_{ms}{t}": "latency" for ms in (0, 20, 80) for t in ("", "_tls")},
}
#: latency rows each mode runs: (RTTs in seconds, TLS modes)
LATENCY = {"full": ((0.0, 0.02, 0.08), (False, True)), "smoke": ((0.0, 0.08), (False,))}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--smoke", action="store_true", help="a few samples of every row; fail unless each row has a number"
    )
    p.add_argument(
        "--only",
        default=",".join(GROUPS),
        help=f"comma-separated row groups (default all): {','.join(GROUPS)}",
    )
    p.add_argument(
        "--out",
        default=str(Path(__file__).with_name("RESULTS.md")),
        help="where to write the markdown (the chart goes next to it)",
    )
    p.add_argument("--no-chart", action="store_true", help="skip ratios.png")
    p.add_argument(
        "--rerender",
        action="store_true",
        help="no measuring: rebuild the markdown and chart from the .json next to --out "
        "(e.g. after editing bench/analysis.md)",
    )
    args = p.parse_args(argv)
    args.groups = [g.strip() for g in args.only.split(",") if g.strip()]
    bad = [g for g in args.groups if g not in GROUPS]
    if bad:
        p.error(f"unknown group(s) {bad}; choose from {','.join(GROUPS)}")
    return args


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_kernelspecs() -> None:
    C.ensure_python3_kernelspec()
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("hopx-remote-python")
    except NoSuchKernel:
        subprocess.run(
            [sys.executable, "-m", "hopx_kernel", "install", "--sys-prefix"],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.rerender:
        return rerender(Path(args.out), args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # atexit stops what we started
    plan = Plan.smoke() if args.smoke else Plan()
    t_start = time.perf_counter()
    load_before = load()
    cpu_before = psutil.cpu_percent(interval=2.0)  # % of all CPUs busy with other work
    ensure_kernelspecs()
    metrics: list[Metric] = []
    errors: list[str] = []
    log = rows._log

    server = C.Server()
    log(f"hopx-kernel serve at {server.base_url} (pid {server.pid})")
    try:
        per_cell = [g for g in args.groups if g in PER_CELL]
        if per_cell:
            live = {}
            try:
                for key in C.ALL:
                    c = C.SdkContender(server) if key == C.SDK else C.KernelContender(key, server)
                    c.start()
                    c.run("1+1")
                    live[key] = c
                log("contenders up: " + ", ".join(live))
                for g in per_cell:
                    log(f"row group {g}")
                    try:
                        metrics += PER_CELL[g](live, plan)
                    except Exception:
                        errors.append(f"{g}: {traceback.format_exc()}")
                        log(f"row group {g} FAILED:\n{traceback.format_exc()}")
            finally:
                for c in live.values():
                    c.stop()
        for g, fn in (
            ("start", lambda: rows.startup(list(C.ALL), server, plan)),
            ("restart", lambda: rows.restart(list(C.KERNELS), server, plan)),
            ("nbclient", lambda: rows.nbclient_rows(list(C.KERNELS), server, plan)),
            ("latency", lambda: latency.latency_rows(plan, *LATENCY["smoke" if args.smoke else "full"])),
        ):
            if g in args.groups:
                log(f"row group {g}")
                try:
                    metrics += fn()
                except Exception:
                    errors.append(f"{g}: {traceback.format_exc()}")
                    log(f"row group {g} FAILED:\n{traceback.format_exc()}")
    finally:
        C.cleanup()

    by_id = {m.id: m for m in metrics}
    metrics += rows.overhead(by_id)
    order = list(EXPECTED)
    metrics.sort(key=lambda m: order.index(m.id) if m.id in order else len(order))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    chart_path = out.with_name("ratios.png")
    chart_ok = False
    if not args.smoke and not args.no_chart:
        try:
            chart_ok = report.chart(metrics, chart_path)
        except Exception:
            log(f"chart failed:\n{traceback.format_exc()}")
    elapsed = time.perf_counter() - t_start
    load_after = load()
    # the load averages lag by minutes (and after the run they are mostly the benchmark's
    # own): what tells of other work is the CPU use measured just before the run began
    busy = cpu_before
    cmd = "python -m bench" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    info = {
        "command": cmd,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "elapsed": elapsed,
        "git": report.git_rev(),
        "load_before": load_before,
        "cpu_before": cpu_before,
        "load_after": load_after,
        "plan": ", ".join(f"{k} {v[0]}+{v[1]}" for k, v in asdict(plan).items() if isinstance(v, tuple))
        + f"; {plan.batch} concurrent notebooks",
        "chart": chart_path.name if chart_ok else None,
        "provisional": (
            f"The machine was busy ({busy:.0f} % of its {os.cpu_count()} CPUs in "
            "use just before the run); rerun on a quiet machine before quoting."
            if busy > 25
            else ("Smoke run: a handful of samples, not for quoting." if args.smoke else None)
        ),
    }
    out.write_text(report.markdown(metrics, info))
    out.with_suffix(".json").write_text(
        json.dumps({"info": info, "metrics": [asdict(m) for m in metrics]}, indent=1)
    )
    log(f"wrote {out}" + (f" and {chart_path}" if chart_ok else "") + f" in {elapsed:.0f} s")

    missing = []
    for mid, keys in EXPECTED.items():
        if GROUP_OF[mid] not in args.groups:
            continue
        if mid.startswith("lat_") and not _latency_planned(mid, args.smoke):
            continue
        m = by_id.get(mid) or next((x for x in metrics if x.id == mid), None)
        for key in keys:
            if m is None or not rows.finite(m.samples.get(key)):
                missing.append(f"{mid}/{key}")
    if missing:
        log("rows without a number: " + ", ".join(missing))
    for e in errors:
        print(e, file=sys.stderr)
    misses = guard(metrics) if args.smoke else []
    for miss in misses:
        log("REGRESSION: " + miss)
    failed = bool(missing or errors or misses)
    C.close_kernel_log(keep=failed)
    return 1 if failed else 0


def _latency_planned(mid: str, smoke: bool) -> bool:
    rtts, tls = LATENCY["smoke" if smoke else "full"]
    ms = int(mid.split("_")[1])
    return any(round(r * 1e3) == ms for r in rtts) and (mid.endswith("_tls") in tls)


def guard(metrics: list[Metric]) -> list[str]:
    """Gross misses of the latency goals, one line each (for --smoke)."""
    by_id = {m.id: m for m in metrics}
    out = []
    for mid in ("runall_ttfo", "runall_ttfo_err", "runall_ttfo_flood"):
        m = by_id.get(mid)
        for key in (C.EMBEDDED, C.CLOUD):
            vals = m.samples.get(key) if m else None
            if vals and median(vals) > GUARD_FIRST_OUTPUT_MS:
                out.append(f"{m.title}, {key}: median {median(vals):.0f} ms > {GUARD_FIRST_OUTPUT_MS:.0f} ms")
    for t in ("", "_tls"):
        far, near = by_id.get(f"lat_80{t}"), by_id.get(f"lat_0{t}")
        if far is None or near is None:
            continue
        for key in (latency.KERNEL, latency.PLAIN):
            if far.samples.get(key) and near.samples.get(key):
                rtts = latency.in_rtt(median(far.samples[key]), median(near.samples[key]), 80.0)
                if rtts > GUARD_RTT_PER_CELL:
                    out.append(
                        f"{far.title}, {latency.LABELS[key]}: {rtts:.2f} RTT per cell > "
                        f"{GUARD_RTT_PER_CELL:g}"
                    )
    return out


def rerender(out: Path, args) -> int:
    data = json.loads(out.with_suffix(".json").read_text())
    metrics = [Metric(**m) for m in data["metrics"]]
    info = data["info"]
    if info.get("chart") and not args.no_chart:
        info["chart"] = (
            out.with_name("ratios.png").name if report.chart(metrics, out.with_name("ratios.png")) else None
        )
    out.write_text(report.markdown(metrics, info))
    rows._log(f"re-rendered {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
