"""Install what the JupyterLab browser test needs, once per session.

* JupyterLab and Playwright (Python) go into the running interpreter's environment
  (the project venv) with ``python -m pip install`` when they are not importable.
  Playwright's wheel ships its own Node driver; no browser is downloaded.
* Chromium comes from Debian (``apt-get install chromium``, binary ``/usr/bin/chromium``);
  Playwright launches it through ``executable_path``.

Presence is the cache: nothing is installed when it is already there. Only when apt
refuses Chromium (or no apt/root is available) is the test skipped, naming what failed;
any other failure fails the test.
"""

from __future__ import annotations

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
