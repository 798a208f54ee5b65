"""Tests for hopx_kernel.kernelspec: pure builders first, then install, then the real
``jupyter kernelspec list`` that editors such as VS Code use to discover kernels."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hopx_kernel import kernelspec as ks

KERNEL_DIR = ("share", "jupyter", "kernels", "hopx-remote-python")
LOGOS = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")


# -- pure builders ------------------------------------------------------------------


def test_make_argv_defaults_to_running_interpreter():
    assert ks.make_argv() == [sys.executable, "-m", "hopx_kernel", "-f", "{connection_file}"]


def test_make_argv_custom_executable():
    assert ks.make_argv("/opt/py/bin/python")[0] == "/opt/py/bin/python"


def test_make_kernel_dict_defaults():
    d = ks.make_kernel_dict()
    assert d == {
        "argv": ks.make_argv(),
        "display_name": "HopX Remote Python",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": True},
    }
    assert "env" not in d
    assert "language_info" not in d


def test_make_kernel_dict_env_argv_and_name():
    d = ks.make_kernel_dict(display_name="X", env={"A": "1"}, argv=["py", "-m", "hopx_kernel"])
    assert d["display_name"] == "X"
    assert d["env"] == {"A": "1"}
    assert d["argv"] == ["py", "-m", "hopx_kernel"]


def test_make_kernel_dict_copies_inputs():
    env, argv = {"A": "1"}, ["py"]
    d = ks.make_kernel_dict(env=env, argv=argv)
    d["env"]["B"] = "2"
    d["argv"].append("x")
    assert env == {"A": "1"} and argv == ["py"]


def test_shipped_template_matches_builder():
    shipped = json.loads((ks.RESOURCES / "kernel.json").read_text())
    assert shipped == ks.make_kernel_dict(argv=ks.make_argv("python"))


@pytest.mark.parametrize("logo", LOGOS)
def test_shipped_logos(logo):
    data = (ks.RESOURCES / logo).read_bytes()
    if logo.endswith(".png"):
        size = int(logo.split("-")[1].split("x")[0])
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == size  # IHDR width
        assert int.from_bytes(data[20:24], "big") == size  # IHDR height
    else:
        assert b"<svg" in data


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        (["A=1"], {"A": "1"}),
        (["A="], {"A": ""}),
        (["A=b=c", "_X9=y"], {"A": "b=c", "_X9": "y"}),
        (["A=1", "A=2"], {"A": "2"}),
    ],
)
def test_parse_env(items, expected):
    assert ks.parse_env(items) == expected


@pytest.mark.parametrize("item", ["A", "=1", "1A=x", "A B=x", "A-B=x"])
def test_parse_env_rejects(item):
    with pytest.raises(ValueError, match="--env"):
        ks.parse_env([item])


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("HOPX_API_KEY", True),
        ("hopx_token", True),
        ("DB_PASSWORD", True),
        ("HOPX_EXEC_TIMEOUT", False),
        ("HOPX_BASE_URL", False),
    ],
)
def test_is_secret_name(name, secret):
    assert ks.is_secret_name(name) is secret


def test_write_kernel_spec(tmp_path):
    dest = Path(ks.write_kernel_spec(tmp_path / "spec", display_name="Y", env={"A": "1"}))
    assert dest == tmp_path / "spec"
    assert sorted(p.name for p in dest.iterdir()) == sorted(("kernel.json", *LOGOS))
    spec = json.loads((dest / "kernel.json").read_text())
    assert spec == ks.make_kernel_dict(display_name="Y", env={"A": "1"})


def test_write_kernel_spec_default_is_temp_dir():
    dest = Path(ks.write_kernel_spec())
    try:
        assert dest.name == "hopx-remote-python"
        assert (dest / "kernel.json").is_file()
    finally:
        import shutil

        shutil.rmtree(dest.parent)


# -- install / main -----------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_main_prefix_writes_spec(tmp_path, capsys):
    rc = ks.main(["--prefix", str(tmp_path), "--env", "HOPX_EXEC_TIMEOUT=3.75", "--display-name", "X"])
    assert rc == 0
    dest = tmp_path.joinpath(*KERNEL_DIR)
    spec = json.loads((dest / "kernel.json").read_text())
    assert spec == {
        "argv": [sys.executable, "-m", "hopx_kernel", "-f", "{connection_file}"],
        "display_name": "X",
        "language": "python",
        "interrupt_mode": "signal",
        "env": {"HOPX_EXEC_TIMEOUT": "3.75"},
        "metadata": {"debugger": True},
    }
    assert spec["argv"][0] == sys.executable
    for logo in LOGOS:
        assert (dest / logo).read_bytes() == (ks.RESOURCES / logo).read_bytes()
    out = capsys.readouterr().out
    assert str(dest) in out
    assert "3.75" not in out  # env values are not echoed (a value no temp path can contain)


def test_main_secret_env_makes_kernel_json_private(tmp_path, capsys):
    rc = ks.main(["--prefix", str(tmp_path), "--env", "HOPX_API_KEY=s3cr3t"])
    assert rc == 0
    kernel_json = tmp_path.joinpath(*KERNEL_DIR, "kernel.json")
    assert _mode(kernel_json) == 0o600
    assert json.loads(kernel_json.read_text())["env"] == {"HOPX_API_KEY": "s3cr3t"}
    out = capsys.readouterr().out
    assert "0600" in out
    assert "s3cr3t" not in out


def test_reinstall_replaces_and_name_is_used(tmp_path):
    assert ks.main(["--prefix", str(tmp_path), "--env", "HOPX_API_KEY=x"]) == 0
    assert ks.main(["--prefix", str(tmp_path)]) == 0
    kernel_json = tmp_path.joinpath(*KERNEL_DIR, "kernel.json")
    assert "env" not in json.loads(kernel_json.read_text())
    assert ks.main(["--prefix", str(tmp_path), "--name", "hopx-dev"]) == 0
    assert (tmp_path / "share/jupyter/kernels/hopx-dev/kernel.json").is_file()


@pytest.mark.parametrize("bad", ["NOEQUALS", "1BAD=x", "HAS SPACE=x"])
def test_main_bad_env_exit_2(tmp_path, capsys, bad):
    rc = ks.main(["--prefix", str(tmp_path), "--env", bad])
    assert rc == 2
    err = capsys.readouterr().err
    assert "hopx-kernel install: error: --env" in err
    assert not tmp_path.joinpath(*KERNEL_DIR).exists()


def test_main_conflicting_locations_exit_2(tmp_path, capsys):
    assert ks.main(["--user", "--prefix", str(tmp_path)]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_main_bad_name_exit_1(tmp_path, capsys):
    assert ks.main(["--prefix", str(tmp_path), "--name", "bad name"]) == 1
    assert "Invalid kernel name" in capsys.readouterr().err


def test_main_help_exit_0(capsys):
    assert ks.main(["--help"]) == 0
    assert "HOPX_API_KEY" in capsys.readouterr().out


def test_install_sys_prefix(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    dest = ks.install(sys_prefix=True)
    assert Path(dest) == tmp_path.joinpath(*KERNEL_DIR)


@pytest.mark.parametrize(
    ("argv", "user", "prefix"),
    [([], False, None), (["--user"], True, None), (["--sys-prefix"], False, sys.prefix)],
)
def test_main_location_flags(monkeypatch, tmp_path, argv, user, prefix):
    """Default is system-wide (user=False, prefix=None), like ``python -m ipykernel install``."""
    from jupyter_client import kernelspec as jks

    calls = []

    def fake_install(self, source_dir, kernel_name=None, user=False, replace=None, prefix=None):
        calls.append((kernel_name, user, prefix))
        assert (Path(source_dir) / "kernel.json").is_file()
        return str(tmp_path / kernel_name)

    monkeypatch.setattr(jks.KernelSpecManager, "install_kernel_spec", fake_install)
    assert ks.main(argv) == 0
    assert calls == [("hopx-remote-python", user, prefix)]


def test_install_rejects_two_locations(tmp_path):
    with pytest.raises(ValueError):
        ks.install(user=True, sys_prefix=True)


# -- discovery through the real jupyter client -----------------------------------------


def test_jupyter_kernelspec_list_finds_spec(tmp_path):
    """Install in a subprocess, then list as VS Code / JupyterLab would."""
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
    env["JUPYTER_PATH"] = str(tmp_path / "share" / "jupyter")
    subprocess.run(
        [sys.executable, "-m", "hopx_kernel.kernelspec", "--prefix", str(tmp_path)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    jupyter = Path(sys.executable).with_name("jupyter")
    assert jupyter.exists(), f"no jupyter next to {sys.executable}"
    out = subprocess.run(
        [str(jupyter), "kernelspec", "list", "--json"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    specs = json.loads(out)["kernelspecs"]
    assert "hopx-remote-python" in specs
    entry = specs["hopx-remote-python"]
    assert Path(entry["resource_dir"]) == tmp_path.joinpath(*KERNEL_DIR)
    spec = entry["spec"]
    assert spec["display_name"] == "HopX Remote Python"
    assert spec["language"] == "python"
    argv = spec["argv"]
    assert os.path.isfile(argv[0]) and os.access(argv[0], os.X_OK)
    assert argv[argv.index("-m") + 1] == "hopx_kernel"
    assert "{connection_file}" in argv
