"""End to end in a real browser: JupyterLab + "HopX Remote Python" in headless Chromium.

Starts JupyterLab from this venv (loopback, free port, temp root, known token), opens a
notebook whose kernelspec is ``hopx-remote-python`` (embedded mode: the kernel starts its
own local sandbox server), then checks live streaming, ``input()`` through the page's
stdin box and Tab completion from the sandbox namespace. Screenshots go to
``tests/browser/artifacts/`` (``jupyterlab.png`` at the end, ``jupyterlab-failure.png`` on
failure). Teardown deletes the kernel over REST, stops JupyterLab and checks that no
``hopx_kernel`` process it started survives.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.kernel.parity import PIP_PROGRESS, rendered_streams

#: pip's recorded progress bytes; the (local) sandbox reads the file by its host path
PIP_FILE = Path(__file__).resolve().parents[1] / "kernel" / "pip_progress.json"

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
KERNEL_NAME = "hopx-remote-python"
KERNEL_DISPLAY = "HopX Remote Python"
NOTEBOOK = "test.ipynb"

START_TIMEOUT = 90.0  # JupyterLab answering /api/status
KERNEL_TIMEOUT = 90.0  # kernel idle after the page opened (embedded server start included)
STEP_TIMEOUT = 45_000  # ms, any one UI wait
STOP_TIMEOUT = 30.0  # SIGTERM -> exit


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A JupyterLab server process started by this test."""

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    # -- process ---------------------------------------------------------------------------
    def start(self) -> None:
        share = Path(sys.prefix) / "share" / "jupyter"
        spec = share / "kernels" / KERNEL_NAME / "kernel.json"
        assert spec.is_file(), (
            f"kernelspec {KERNEL_NAME} not found at {spec}; run "
            f"`{sys.executable} -m hopx_kernel install --sys-prefix` (make setup does)"
        )
        home = self.root.parent
        settings = home / "lab-settings"
        for plugin, values in {
            # no news/update toasts over the notebook
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
            # every cell in the DOM, whatever the viewport
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        }.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOPX_")}  # embedded
        env.update(
            JUPYTER_PATH=str(share),
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            IPYTHONDIR=str(home / "ipython"),
        )
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.terminals_enabled=False",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(self.root),
        )
        deadline = time.monotonic() + START_TIMEOUT
        last_error = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status = self.api("GET", "/api/status", timeout=5)
                if "started" in status:
                    return
            except (OSError, urllib.error.URLError) as exc:
                last_error = exc
            time.sleep(0.25)  # poll interval, not synchronisation
        raise AssertionError(
            f"JupyterLab not ready within {START_TIMEOUT} s (last error: {last_error}):\n{self.log_tail()}"
        )

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> int:
        """SIGTERM, bounded wait, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- REST ------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


@pytest.fixture
def lab(browser_tools, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "jupyterlab-failure.png").unlink(missing_ok=True)  # stale from an old run
    root = tmp_path / "root"
    root.mkdir()
    server = Lab(root, ARTIFACTS / "jupyterlab-server.log")
    started: list[psutil.Process] = []
    server.started = started  # descendants seen while running (for the leak check)
    try:
        server.start()
        yield server
    finally:
        # Safety net: the test normally stops everything itself and asserts on it.
        started.extend(server.descendants())
        server.stop()
        for proc in started:
            try:
                if proc.is_running():
                    proc.kill()
            except psutil.NoSuchProcess:
                pass


def _ours(procs: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for proc in procs:
        try:
            if "hopx_kernel" in " ".join(proc.cmdline()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            found.append(proc)
    return found


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


def _describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for proc in procs:
        try:
            out.append(f"{proc.pid}: {' '.join(proc.cmdline())}")
        except psutil.Error:
            out.append(str(proc.pid))
    return out


def _new_notebook(lab: Lab) -> None:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "c0",
                "metadata": {},
                "outputs": [],
                "source": "",
            }
        ],
        "metadata": {
            "kernelspec": {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY, "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    lab.api("PUT", f"/api/contents/{NOTEBOOK}", {"type": "notebook", "content": nb})


def _run_in_cell(page, index: int, code: str):
    """Click cell ``index``'s editor, type ``code`` and run it with Shift+Enter."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    editor = cell.locator(".cm-content")
    editor.wait_for(state="visible", timeout=STEP_TIMEOUT)
    editor.click()
    page.keyboard.type(code)
    from playwright.sync_api import expect

    expect(editor).to_have_text(code, timeout=STEP_TIMEOUT)
    page.keyboard.press("Shift+Enter")
    return cell


# Resolves (truthy) the first time a frame sees "first line" in the cell; tells whether the
# cell was still running then (prompt [*], no "second line") or had already finished.
_STREAM_PROBE = """([index]) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  if (!cell) return false;
  const out = cell.querySelector('.jp-OutputArea');
  const text = out ? out.innerText : '';
  if (!text.includes('first line')) return false;
  const prompt = cell.querySelector('.jp-InputPrompt').innerText.trim();
  const running = prompt.startsWith('[*]') && !text.includes('second line');
  return {running, prompt, text};
}"""


@pytest.mark.timeout(900)  # first run includes installing Chromium/JupyterLab/Playwright
def test_jupyterlab_hopx_kernel_in_chromium(lab, browser_tools, notebook_page):
    from playwright.sync_api import expect

    test_started = time.monotonic()
    _new_notebook(lab)
    expect.set_options(timeout=STEP_TIMEOUT)

    with notebook_page("jupyterlab-failure.png", height=900) as page:
        # 2. the notebook, on our kernel
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        expect(panel.locator(".jp-Toolbar-kernelName")).to_contain_text(KERNEL_DISPLAY)
        expect(page.locator(".jp-StatusBar-Widget").filter(has_text=KERNEL_DISPLAY).first).to_be_visible()
        expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
            "data-status", "idle", timeout=KERNEL_TIMEOUT * 1000
        )
        sessions = lab.api("GET", "/api/sessions")
        assert [s["kernel"]["name"] for s in sessions] == [KERNEL_NAME], sessions

        # 3. live streaming: "first line" shows while the cell still runs
        cell = _run_in_cell(
            page, 0, "import time; print('first line', flush=True); time.sleep(4); print('second line')"
        )
        seen = page.wait_for_function(
            _STREAM_PROBE, arg=[0], polling="raf", timeout=KERNEL_TIMEOUT * 1000
        ).json_value()
        assert seen["running"], f"'first line' only appeared once the cell ended: {seen}"
        print(f"streaming probe: {seen}")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("second line")
        expect(cell.locator(".jp-InputPrompt")).to_have_text("[1]:")

        # 4. input() answered in the page
        cell = _run_in_cell(page, 1, "name = input('Your name: ')")
        box = cell.locator("input.jp-Stdin-input")
        expect(cell.locator(".jp-Stdin")).to_contain_text("Your name:")
        box.click()
        box.fill("Ada")
        box.press("Enter")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("Ada")
        expect(cell.locator(".jp-InputPrompt")).to_have_text("[2]:")
        cell = _run_in_cell(page, 2, "print('hello', name)")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("hello Ada")

        # 5. Tab completion from the sandbox namespace
        cell = _run_in_cell(page, 3, "sandbox_value_xyz = 42")
        expect(cell.locator(".jp-InputPrompt")).to_have_text("[4]:")
        cell = page.locator(".jp-Notebook .jp-Cell").nth(4)
        editor = cell.locator(".cm-content")
        editor.click()
        page.keyboard.type("sandbox_val")
        expect(editor).to_have_text("sandbox_val")
        page.keyboard.press("Tab")
        completer = page.locator(".jp-Completer:visible")
        expect(editor.or_(completer).filter(has_text="sandbox_value_xyz").first).to_be_visible()
        print(
            f"completer popup shown: {bool(completer.count())} "
            f"{completer.locator('.jp-Completer-item').all_inner_texts()} "
            f"editor={editor.inner_text()!r}"
        )
        if completer.count():  # several matches: pick ours from the list
            completer.locator(".jp-Completer-item", has_text="sandbox_value_xyz").click()
        expect(editor).to_have_text("sandbox_value_xyz")
        page.keyboard.press("Shift+Enter")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("42")

        # 6. pip's progress bar renders as on a local kernel: the recorded bytes replayed
        # in the sandbox show exactly what JupyterLab's processText port predicts (the
        # parity test shows a local kernel sends the same bytes); the completer's
        # documentation requests (inspect with the cursor past the code) are answered
        cell = _run_in_cell(
            page,
            5,
            f"import json, sys; P = json.load(open({str(PIP_FILE)!r}))"
            "['chunks']; [sys.stdout.write(c) or sys.stdout.flush() "
            "for c in P]; None",
        )
        expect(cell.locator(".jp-InputPrompt")).to_have_text("[6]:")
        [expected] = rendered_streams([("stream", {"name": "stdout", "text": c}) for c in PIP_PROGRESS])
        shown = cell.locator(".jp-OutputArea-output").first.inner_text()
        assert shown.rstrip("\n") == expected.rstrip("\n"), (shown, expected)
        quiet = [
            line
            for line in lab.log_tail(200_000).splitlines()
            if re.search(r"/inspect|\[hopx-kernel|hopx_kernel\.| 400 ", line)
        ]
        assert quiet == [], quiet

        # 7. a picture for a person
        page.locator(".jp-Notebook .jp-Cell").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"), full_page=True)

    # 8. teardown: delete the kernel over REST, stop JupyterLab, nothing of ours survives
    before = lab.descendants()
    ours = _ours(before)
    assert ours, f"no hopx_kernel process under JupyterLab: {_describe(before)}"
    lab.started.extend(before)
    print(f"hopx_kernel processes under JupyterLab: {_describe(ours)}")
    for session in lab.api("GET", "/api/sessions"):
        lab.api("DELETE", f"/api/kernels/{session['kernel']['id']}")
    assert lab.api("GET", "/api/kernels") == []
    status = lab.stop()
    gone, alive = psutil.wait_procs(_alive(before), timeout=STOP_TIMEOUT)
    leftover = _ours(_alive(alive))
    assert not leftover, f"hopx_kernel processes left after shutdown: {_describe(leftover)}"
    assert status in (0, -signal.SIGTERM), f"JupyterLab exited with {status}:\n{lab.log_tail()}"
    print(
        f"browser test body took {time.monotonic() - test_started:.1f} s "
        f"(installs/checks: {browser_tools.install_seconds:.1f} s)"
    )
