"""Rows for a far-away sandbox: back-to-back cells through :class:`~bench.netdelay.DelayProxy`
at 0 / 20 / 80 ms round trip, plain and TLS, for the kernel (agent with socket reuse), the
kernel against a plain agent (one execution per socket), and the raw hopx-ai SDK stream.

Everything the kernel and the SDK say to ``hopx-kernel serve`` — control plane and agent —
goes through the proxy (``--public-url`` advertises it as the agent's address). The floor
of a cell is one round trip plus the local cost (the same cell at 0 ms RTT).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from . import contenders as C
from .netdelay import DelayProxy
from .rows import Metric, _log

KERNEL = "kernel"  # HopX kernel, cloud mode, agent with stream reuse
PLAIN = "kernel-plain"  # HopX kernel, cloud mode, agent without it (serve --no-stream-reuse)
SDK = C.SDK
#: start rows only: the SDK's ``AsyncSandbox.create`` alone (the goal is this + 3 RTT)...
CREATE = "create"
#: ...and a local ipykernel's start → first result, no network at all (what any Jupyter
#: kernel started through jupyter_client pays before its first cell)
LOCAL = C.IPYKERNEL
KEYS = (KERNEL, PLAIN, SDK)
LABELS = {KERNEL: "HopX kernel (socket reuse)", PLAIN: "HopX kernel, plain agent", SDK: "hopx-ai SDK stream"}


class _Certs:
    """A throwaway CA and a certificate for 127.0.0.1 (trustme)."""

    def __init__(self) -> None:
        import trustme

        self.dir = Path(tempfile.mkdtemp(prefix="hopx-bench-tls-"))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca = str(self.dir / "ca.pem")
        self.cert = str(self.dir / "server.pem")
        ca.cert_pem.write_to_path(self.ca)
        cert.private_key_and_cert_chain_pem.write_to_path(self.cert)
        C.STARTED.append(self)

    def stop(self) -> None:
        for f in self.dir.iterdir():
            f.unlink()
        self.dir.rmdir()
        if self in C.STARTED:
            C.STARTED.remove(self)


class Rig:
    """``hopx-kernel serve`` behind a delaying proxy; quacks like :class:`~bench.contenders.Server`."""

    def __init__(self, rtt: float, certs: _Certs | None, reuse: bool) -> None:
        self.proxy = DelayProxy(rtt).start()
        C.STARTED.append(self)
        scheme = "https" if certs else "http"
        args = ["--public-url", self.proxy.url(scheme)]
        if certs:
            args += ["--tls-cert", certs.cert, "--tls-key", certs.cert]
        if not reuse:
            args += ["--no-stream-reuse"]
        self.server = C.Server(args)
        self.proxy.target = ("127.0.0.1", int(self.server.base_url.rsplit(":", 1)[1]))
        self.base_url = self.proxy.url(scheme)
        self.api_key = self.server.api_key
        self.ca = certs.ca if certs else None

    @property
    def pid(self) -> int:
        return self.server.pid

    def env(self) -> dict[str, str]:
        env = {"HOPX_API_KEY": self.api_key, "HOPX_BASE_URL": self.base_url}
        if self.ca:
            env["HOPX_CA_BUNDLE"] = self.ca
        return env

    def stop(self) -> None:
        self.server.stop()
        self.proxy.stop()
        if self in C.STARTED:
            C.STARTED.remove(self)


def _warm_pool(server_pid: int, timeout: float = 20.0) -> None:
    """Wait until the server's one warm sandbox kernel has booted and gone quiet, so every
    start is measured against a warm pool: a create that caught the pool refilling after
    the previous sample waited for an IPython start (~0.5-1 s), and the SDK's create moved
    from 0.4 to 1.3 s between rows."""
    import psutil

    deadline = time.monotonic() + timeout
    server = psutil.Process(server_pid)
    quiet = 0  # consecutive quiet 0.2 s looks: a kernel that just booted is quiet for
    # jupyter_client's 0.2 s wait before the pool warms its completer
    while time.monotonic() < deadline:
        try:
            kernels = [
                p for p in server.children(recursive=True) if "kernel_launcher" in " ".join(p.cmdline())
            ]
            if len(kernels) == 1 and kernels[0].cpu_percent(interval=0.2) < 2.0:
                quiet += 1
                if quiet == 3:
                    return
                continue
        except psutil.Error:
            pass  # a kernel ending as it is looked at
        quiet = 0
        time.sleep(0.05)


def _cells(c, warm: int, n: int, code: str = "pass") -> list[float]:
    """Seconds per cell, each sent the moment the previous one went idle."""
    out = []
    for i in range(warm + n):
        run = c.run(code)
        if i >= warm:
            out.append(run.total)
    return out


async def _notebook_per_cell(rig, cells: int = 20) -> float:
    """Seconds per cell of a ``cells``-cell notebook run by nbclient on the kernel (after one
    warm-up cell, so the sandbox's creation is not counted)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"x = {i}") for i in range(cells + 1)]
    client = NotebookClient(
        nb, kernel_name=C.KERNEL_NAMES[C.CLOUD], timeout=120, resources={"metadata": {"path": "."}}
    )
    async with client.async_setup_kernel(env=C.kernel_env(C.CLOUD, rig), stderr=C.kernel_log()):
        await client.async_execute_cell(nb.cells[0], 0)
        t0 = time.perf_counter()
        for i in range(1, cells + 1):
            await client.async_execute_cell(nb.cells[i], i)
        return (time.perf_counter() - t0) / cells


def latency_rows(plan, rtts=(0.0, 0.02, 0.08), tls=(False, True)) -> list[Metric]:
    """Per (RTT, TLS): ms per back-to-back `pass` for each of :data:`KEYS` (``lat_*``), and
    the start (``lat_start_*``): kernel start → first `1+1` result, and the SDK's
    ``AsyncSandbox.create`` → first result (the least a sandbox's first result can take)."""
    warm, n = plan.lat
    metrics = []
    certs = _Certs() if any(tls) else None
    saved = os.environ.get("SSL_CERT_FILE")
    try:
        for secure in tls:
            for rtt in rtts:
                ms = rtt * 1e3
                tag = f"{ms:.0f}" + ("_tls" if secure else "")
                how = f"{ms:.0f} ms RTT" + (", TLS" if secure else "")
                m = Metric(f"lat_{tag}", f"back-to-back `pass`, {how}", "ms")
                st = Metric(f"lat_start_{tag}", f"start → first result, {how}", "ms")
                nb = Metric(f"lat_nb_{tag}", f"20-cell notebook via nbclient, per cell, {how}", "ms")
                m.notes["rtt_ms"] = st.notes["rtt_ms"] = nb.notes["rtt_ms"] = f"{ms:g}"
                for key in KEYS:
                    rig = Rig(rtt, certs if secure else None, reuse=key != PLAIN)
                    try:
                        if secure and key == SDK:  # httpx and websockets in the SDK read it
                            os.environ["SSL_CERT_FILE"] = certs.ca
                        for rep in range(plan.lat_starts if key != PLAIN else 1):
                            _warm_pool(rig.pid)
                            c = C.SdkContender(rig) if key == SDK else C.KernelContender(C.CLOUD, rig)
                            t0 = time.perf_counter()
                            c.start()
                            if key == SDK:
                                st.add(CREATE, (time.perf_counter() - t0) * 1e3)
                            try:
                                first = c.run("1+1")
                                if key in (KERNEL, SDK):
                                    st.add(key, (first.sent + first.result - t0) * 1e3)
                                if rep == 0:
                                    for v in _cells(c, warm, n):
                                        m.add(key, v * 1e3)
                            finally:
                                c.stop()
                        if key == KERNEL:
                            for _ in range(plan.lat_notebooks):
                                nb.add(KERNEL, asyncio.run(_notebook_per_cell(rig)) * 1e3)
                    finally:
                        rig.stop()
                        if saved is None:
                            os.environ.pop("SSL_CERT_FILE", None)
                        else:
                            os.environ["SSL_CERT_FILE"] = saved
                for _ in range(plan.lat_starts):
                    local = C.KernelContender(C.IPYKERNEL)
                    t0 = time.perf_counter()
                    local.start()
                    try:
                        first = local.run("1+1")
                        st.add(LOCAL, (first.sent + first.result - t0) * 1e3)
                    finally:
                        local.stop()
                _log(
                    f"{m.id}: "
                    + ", ".join(f"{k} {sorted(v)[len(v) // 2]:.1f} ms" for k, v in m.samples.items())
                )
                metrics += [m, st] + ([nb] if nb.samples else [])
    finally:
        if certs is not None:
            certs.stop()
    return metrics


def in_rtt(per_cell_ms: float, local_ms: float, rtt_ms: float) -> float:
    """Round trips a cell cost beyond the local cost (pure).

    >>> round(in_rtt(98.0, 9.0, 80.0), 3)
    1.113
    """
    return (per_cell_ms - local_ms) / rtt_ms if rtt_ms > 0 else float("nan")


__all__ = ["KEYS", "LABELS", "Rig", "in_rtt", "latency_rows"]
