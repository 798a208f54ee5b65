"""The built distributions: what the wheel and the sdist hold, and that installing the
wheel alone registers the kernel, as ``pip install ipykernel`` registers ``python3``.

The wheel is installed with ``--no-deps`` into a fresh venv; the dependencies come from
this test run's environment through a ``.pth`` line (no download, no shared
``share/jupyter``). The kernelspec then has to be found by ``jupyter kernelspec list``
run with the fresh venv's Python, in the fresh venv's prefix, and a cell has to run on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SPEC = "share/jupyter/kernels/hopx-remote-python"
SPEC_FILES = ("kernel.json", "logo-32x32.png", "logo-64x64.png", "logo-svg.svg")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_the_wheel_ships_the_kernelspec_as_shared_data(dist):
    wheel = _one(dist, "hopx_kernel-*-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = f"{wheel.name.split('-py3')[0]}.data/data/{SPEC}"
    for name in SPEC_FILES:
        assert f"{data}/{name}" in names  # → <prefix>/share/jupyter/kernels/...
        assert f"hopx_kernel/resources/{name}" in names  # for `hopx-kernel install`
    spec = json.loads(zipfile.ZipFile(wheel).read(f"{data}/kernel.json"))
    # "python", as ipykernel's own: jupyter_client runs it with its own sys.executable
    assert spec["argv"] == ["python", "-m", "hopx_kernel", "-f", "{connection_file}"]
    assert not any(n.startswith(("tests/", "bench/", ".venv")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "Requires-Dist: ipykernel<8,>=7.0" in metadata
    assert "Provides-Extra: test" in metadata


def test_the_sdist_holds_the_sources_and_the_kernelspec(dist):
    sdist = _one(dist, "hopx_kernel-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in SPEC_FILES:
        assert f"kernelspec/hopx-remote-python/{name}" in names
    assert {
        "pyproject.toml",
        "README.md",
        "hopx_kernel/__init__.py",
        "hopx_kernel/server/web/app.py",
    } <= names
    assert not any(n.startswith((".venv", "out/", "bench/raw")) or "__pycache__" in n for n in names)


def test_installing_the_wheel_alone_registers_the_kernel(dist, tmp_path):
    wheel = _one(dist, "hopx_kernel-*-py3-none-any.whl")
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=120,
    )
    fresh_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the dependencies (jupyter_client, ipykernel, ...) from this environment, after the wheel's own
    (Path(fresh_site) / "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "HOPX_", "PYTHON"))}
    env["JUPYTER_PLATFORM_DIRS"] = "1"

    listed = subprocess.run(
        # `jupyter kernelspec list` (the fresh venv has no jupyter-kernelspec script of its own)
        [str(python), "-m", "jupyter_client.kernelspecapp", "list", "--json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    spec = json.loads(listed.stdout)["kernelspecs"]["hopx-remote-python"]
    assert Path(spec["resource_dir"]) == venv / SPEC
    assert spec["spec"]["display_name"] == "HopX Remote Python"

    # and the kernel it names runs a cell, with the wheel's code (not this checkout's)
    script = textwrap.dedent("""
        import hopx_kernel, jupyter_client
        assert hopx_kernel.__file__.startswith(sys.prefix), hopx_kernel.__file__
        km, kc = jupyter_client.manager.start_new_kernel(kernel_name="hopx-remote-python", startup_timeout=60)
        try:
            reply = kc.execute_interactive("print(6 * 7)", timeout=60, output_hook=lambda m: print(
                m["content"].get("text", ""), end=""))
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            kc.stop_channels()
            km.shutdown_kernel()
    """)
    ran = subprocess.run(
        [str(python), "-c", "import sys\n" + script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout == "42\n"

    # `hopx-kernel install` from the wheel still writes other prefixes, with the logos
    prefix = tmp_path / "elsewhere"
    installed = subprocess.run(
        [str(venv / "bin" / "hopx-kernel"), "install", "--prefix", str(prefix), "--name", "hopx-other"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert installed.returncode == 0, installed.stderr
    assert sorted(p.name for p in (prefix / "share/jupyter/kernels/hopx-other").iterdir()) == sorted(
        SPEC_FILES
    )
