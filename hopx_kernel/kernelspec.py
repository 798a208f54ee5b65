"""The "HopX Remote Python" kernelspec: build it, write it, install it.

Small composable steps, as in ipykernel's ``kernelspec.py``: argv list → kernel dict →
kernelspec directory → installed kernelspec. Each step is usable and testable alone.

Usage::

    $ hopx-kernel install --user
    $ hopx-kernel install --sys-prefix --env HOPX_EXEC_TIMEOUT=30
    $ python -m hopx_kernel install --prefix /opt/jupyter --name hopx-dev --display-name "HopX (dev)"

Without ``--user``, ``--sys-prefix`` or ``--prefix`` the spec is installed system-wide,
like ``python -m ipykernel install``.

``--env K=V`` values are written into ``kernel.json`` in plain text, by design: that is how
Jupyter passes environment to a kernel. Secrets such as ``HOPX_API_KEY`` are better set in
the environment of the Jupyter server / editor that starts the kernel. If a secret-looking
variable is given with ``--env`` anyway, ``kernel.json`` is written readable by its owner
only (mode 0600) and the installer says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from .text import is_secret_name

__all__ = [
    "DISPLAY_NAME",
    "KERNEL_NAME",
    "RESOURCES",
    "install",
    "is_secret_name",
    "main",
    "make_argv",
    "make_kernel_dict",
    "parse_env",
    "write_kernel_spec",
]

#: Default kernelspec name (the directory under ``share/jupyter/kernels``).
KERNEL_NAME = "hopx-remote-python"
#: Default name shown in Jupyter and VS Code kernel pickers.
DISPLAY_NAME = "HopX Remote Python"
#: The shipped kernelspec (kernel.json with argv starting "python", and the logos): in a
#: wheel the package's ``resources/``, in a source checkout the top-level ``kernelspec/``,
#: which the wheel also ships as shared data (``share/jupyter/kernels/hopx-remote-python``).
RESOURCES = next(
    (
        p
        for p in (Path(__file__).parent / "resources", Path(__file__).parents[1] / "kernelspec" / KERNEL_NAME)
        if (p / "kernel.json").is_file()
    ),
    Path(__file__).parent / "resources",
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def make_argv(executable: str | None = None) -> list[str]:
    """The command Jupyter runs to start the kernel.

    Args:
        executable: the Python interpreter; defaults to the running one (``sys.executable``).

    Returns:
        ``[executable, "-m", "hopx_kernel", "-f", "{connection_file}"]``
    """
    return [executable or sys.executable, "-m", "hopx_kernel", "-f", "{connection_file}"]


def make_kernel_dict(
    display_name: str = DISPLAY_NAME,
    env: dict[str, str] | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """The content of ``kernel.json``.

    Args:
        display_name: name shown in kernel pickers.
        env: extra environment for the kernel process; the key is omitted when empty.
        argv: launch command; defaults to :func:`make_argv`.

    Example:
        >>> make_kernel_dict(argv=["python", "-m", "hopx_kernel", "-f", "{connection_file}"])["language"]
        'python'
    """
    spec: dict[str, Any] = {
        "argv": list(argv) if argv is not None else make_argv(),
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
    }
    if env:
        spec["env"] = dict(env)
    # JupyterLab offers its debugger from this flag alone (never from kernel_info). The
    # debugger runs in the sandbox's kernel over the kernel channel; a sandbox without one
    # answers every debug_request with a one-line error, and kernel_info says so.
    spec["metadata"] = {"debugger": True}
    return spec


def write_kernel_spec(path: str | os.PathLike[str] | None = None, **kw: Any) -> str:
    """Write a kernelspec directory: ``kernel.json`` plus the logos.

    Args:
        path: directory to create (must not exist yet); a fresh temporary directory
            ``.../hopx-remote-python`` when omitted.
        **kw: passed to :func:`make_kernel_dict` (``display_name``, ``env``, ``argv``).

    Returns:
        The directory written. If ``env`` holds a secret-looking name (see
        :func:`is_secret_name`), ``kernel.json`` is mode 0600.
    """
    if path is None:
        path = Path(tempfile.mkdtemp(suffix="_kernels")) / KERNEL_NAME
    path = Path(path)
    path.mkdir(mode=0o755, parents=True)
    for logo in sorted(RESOURCES.glob("logo-*")):
        shutil.copyfile(logo, path / logo.name)

    spec = make_kernel_dict(**kw)
    secret = any(is_secret_name(k) for k in spec.get("env", {}))
    kernel_json = path / "kernel.json"
    # Create with the final mode so a secret is never readable by others, even briefly.
    mode = stat.S_IRUSR | stat.S_IWUSR if secret else 0o644
    fd = os.open(kernel_json, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    if secret:
        os.chmod(kernel_json, mode)  # in case umask or an old file left it wider
    return str(path)


def install(
    user: bool = False,
    prefix: str | None = None,
    sys_prefix: bool = False,
    name: str = KERNEL_NAME,
    display_name: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Install the kernelspec with ``jupyter_client``'s ``KernelSpecManager``.

    Args:
        user: install for the current user (``~/.local/share/jupyter/kernels``).
        prefix: install under ``PREFIX/share/jupyter/kernels``.
        sys_prefix: install into the running environment (``sys.prefix``).
        name: kernelspec name (directory name), lower-cased by jupyter_client.
        display_name: name shown in kernel pickers; ``"HopX Remote Python"`` when None.
        env: extra environment written into ``kernel.json`` (plain text, see module doc).

    Returns:
        The directory the kernelspec was installed to. With none of ``user``,
        ``prefix``, ``sys_prefix`` it is the system-wide location.

    Raises:
        ValueError: conflicting locations or an invalid kernel name.
        OSError: no permission to write the chosen location.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if sum(map(bool, (user, prefix, sys_prefix))) > 1:
        raise ValueError("choose only one of user, prefix and sys_prefix")
    if sys_prefix:
        prefix = sys.prefix
    src = write_kernel_spec(display_name=display_name or DISPLAY_NAME, env=env)
    try:
        dest = KernelSpecManager().install_kernel_spec(src, kernel_name=name, user=user, prefix=prefix)
    finally:
        shutil.rmtree(Path(src).parent, ignore_errors=True)
    if env and any(is_secret_name(k) for k in env):
        os.chmod(Path(dest) / "kernel.json", stat.S_IRUSR | stat.S_IWUSR)
    return dest


def parse_env(items: list[str]) -> dict[str, str]:
    """Parse ``K=V`` strings into a dict; the value may be empty or contain ``=``.

    Raises:
        ValueError: an item has no ``=`` or an invalid variable name.
    """
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--env expects NAME=VALUE, got {item!r}")
        if not _ENV_NAME.match(key):
            raise ValueError(
                f"--env {key!r}: not a valid variable name (letters, digits, _; not starting with a digit)"
            )
        env[key] = value
    return env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hopx-kernel install",
        description=(
            f"Install the {DISPLAY_NAME!r} Jupyter kernelspec. Installs system-wide "
            "unless --user, --sys-prefix or --prefix is given."
        ),
        epilog=(
            "--env values are stored in plain text in kernel.json. Prefer setting "
            "HOPX_API_KEY in the environment that starts Jupyter; if given with --env, "
            "kernel.json is made readable by you only (mode 0600)."
        ),
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user only")
    where.add_argument(
        "--sys-prefix",
        action="store_true",
        help=f"install into this Python environment ({sys.prefix})",
    )
    where.add_argument("--prefix", metavar="P", help="install under P/share/jupyter/kernels")
    p.add_argument(
        "--name", default=KERNEL_NAME, metavar="N", help=f"kernelspec name (default: {KERNEL_NAME})"
    )
    p.add_argument(
        "--display-name", metavar="D", help=f"name shown in kernel pickers (default: {DISPLAY_NAME!r})"
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="environment variable for the kernel; repeatable",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """``hopx-kernel install [--user | --sys-prefix | --prefix P] [--name N]
    [--display-name D] [--env K=V ...]``.

    Args:
        argv: the arguments after ``install``; ``sys.argv[1:]`` when None.

    Returns:
        0 on success, 2 for bad arguments, 1 if installing failed.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        try:
            env = parse_env(args.env)
        except ValueError as exc:
            parser.error(str(exc))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2

    try:
        dest = install(
            user=args.user,
            prefix=args.prefix,
            sys_prefix=args.sys_prefix,
            name=args.name,
            display_name=args.display_name,
            env=env,
        )
    except (OSError, ValueError) as exc:
        hint = ""
        if isinstance(exc, PermissionError):
            hint = " Try --user or --sys-prefix."
        print(f"hopx-kernel install: error: {str(exc).rstrip('.')}.{hint}", file=sys.stderr)
        return 1

    print(f"Installed kernelspec {Path(dest).name} ({args.display_name or DISPLAY_NAME}) in {dest}")
    if env:
        print(f"  kernel env: {', '.join(sorted(env))} (values stored in {Path(dest) / 'kernel.json'})")
    secrets = sorted(k for k in env if is_secret_name(k))
    if secrets:
        print(
            f"  note: {', '.join(secrets)} stored in plain text; kernel.json made readable by "
            "you only (0600). Prefer setting secrets in the environment that starts Jupyter."
        )
    if args.prefix:
        share = Path(args.prefix).resolve() / "share" / "jupyter"
        if not _on_jupyter_path(share):
            print(f"  note: {share} is not on Jupyter's search path; add it to JUPYTER_PATH.")
    return 0


def _on_jupyter_path(share: Path) -> bool:
    from jupyter_core.paths import jupyter_path

    return any(Path(p).resolve() == share for p in jupyter_path())


if __name__ == "__main__":
    sys.exit(main())
