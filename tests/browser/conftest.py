"""Install what the JupyterLab browser tests need, once per session, and open their page.

* JupyterLab and Playwright (Python) go into the running interpreter's environment
  (the project venv) with ``python -m pip install`` when they are not importable.
  Playwright's wheel ships its own Node driver; no browser is downloaded.
* Chromium comes from Debian (``apt-get install chromium``, binary ``/usr/bin/chromium``);
  Playwright launches it through ``executable_path``.

Presence is the cache: nothing is installed when it is already there. Only when apt
refuses Chromium (or no apt/root is available) is the test skipped, naming what failed;
any other failure fails the test.

:func:`notebook_page` opens the test notebook of a running JupyterLab in headless
Chromium, the same way for every browser test, and on failure keeps a screenshot and the
logs.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_TIMEOUT = 900  # seconds for any one install command (apt on a slow mirror)


@dataclass
class BrowserTools:
    chromium: Path
    install_seconds: float


def _run(cmd: list[str], what: str, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=INSTALL_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{what}: `{' '.join(cmd)}` did not finish within {INSTALL_TIMEOUT} s "
            f"(output so far: {str(exc.output or '')[-2000:]})"
        )


def _pip_install(module: str, requirement: str) -> None:
    """Install ``requirement`` into this interpreter's environment unless ``module`` imports."""
    if importlib.util.find_spec(module) is not None:
        return
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement]
    done = _run(cmd, f"installing {requirement}")
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{done.stdout[-4000:]}")
    importlib.invalidate_caches()
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{requirement} installed but `import {module}` still fails")


def _ensure_chromium() -> Path:
    """Chromium from Debian; skip (naming the failure) only if apt cannot provide it."""
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip(f"Chromium is not installed ({CHROMIUM} missing) and apt-get is unavailable")
    if os.geteuid() != 0:
        pytest.skip(
            f"Chromium is not installed ({CHROMIUM} missing) and installing it with apt-get needs root"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=300"]  # wait for a concurrent apt, do not fail at once
    update = _run([apt, *lock, "update", "-q"], "apt-get update", env)
    if update.returncode != 0:
        pytest.skip(
            f"Chromium could not be installed: `apt-get update` failed "
            f"(exit {update.returncode}):\n{update.stdout[-2000:]}"
        )
    install = _run([apt, *lock, "install", "-y", "-q", "chromium"], "apt-get install chromium", env)
    if install.returncode != 0:
        pytest.skip(
            f"Chromium could not be installed: `apt-get install -y chromium` failed "
            f"(exit {install.returncode}):\n{install.stdout[-2000:]}"
        )
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is missing")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_tools() -> BrowserTools:
    """Make sure JupyterLab, Playwright and Chromium are present; return the browser path."""
    started = time.monotonic()
    chromium = _ensure_chromium()
    _pip_install("jupyterlab", "jupyterlab>=4.1")
    _pip_install("playwright", "playwright>=1.45")
    version = subprocess.run(
        [str(chromium), "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60
    )
    if version.returncode != 0 or "Chromium" not in version.stdout:
        pytest.fail(f"`{chromium} --version` does not work:\n{version.stdout[-2000:]}")
    return BrowserTools(chromium=chromium, install_seconds=time.monotonic() - started)


@pytest.fixture
def notebook_page(lab, browser_tools, tmp_path):
    """Opens ``lab``'s test notebook in headless Chromium (a fresh profile each time):
    ``with notebook_page("name-failure.png") as page:``. A failure inside the block saves
    that screenshot in the artifacts and prints JupyterLab's log tail (and the browser
    console when ``console=True``); the browser is closed either way."""
    from playwright.sync_api import sync_playwright

    from .test_jupyterlab import ARTIFACTS, NOTEBOOK, STEP_TIMEOUT

    @contextlib.contextmanager
    def open_page(failure_png: str, *, height: int = 1000, console: bool = False):
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),  # a fresh --user-data-dir
                executable_path=str(browser_tools.chromium),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": height},
            )
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(STEP_TIMEOUT)
            messages: list[str] = []
            if console:
                page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            try:
                page.goto(
                    f"{lab.base}/lab/tree/{NOTEBOOK}?token={lab.token}",
                    wait_until="domcontentloaded",
                    timeout=STEP_TIMEOUT,
                )
                yield page
            except BaseException:
                try:
                    page.screenshot(path=str(ARTIFACTS / failure_png), full_page=True)
                except Exception as exc:  # keep the original failure
                    print(f"failure screenshot failed: {exc}", file=sys.stderr)
                print(f"--- JupyterLab log tail ---\n{lab.log_tail()}", file=sys.stderr)
                if console:
                    print("--- browser console ---\n" + "\n".join(messages[-60:]), file=sys.stderr)
                raise
            finally:
                context.close()

    return open_page
