"""Landlock confinement of sandbox processes, through the raw syscalls (no dependency).

Each sandbox's processes (its IPython kernel, and every bash or javascript execution)
restrict themselves before any sandbox code runs:

- **write** (create, remove, truncate) only in the sandbox's folder, its private folder
  (``HOME`` and ``TMPDIR``) and ``/dev/shm``; read and write existing files in ``/dev``;
- **read and execute** only the system and Python folders they need (:func:`read_paths`):
  never the server's root, so not other sandboxes' folders nor connection files;
- with Landlock ABI >= 6, **signals** and **abstract Unix sockets** are scoped to the
  sandbox (no signal to the server or another sandbox);
- Landlock itself forbids ptrace (and so reading ``/proc/<pid>/mem`` or ``environ``) of
  any process outside the sandbox's own domain.

Not confined: the network (TCP), and everything Landlock does not cover (e.g. ``/proc``
listings of other processes). All sandboxes run as the server's user.

The rules travel to the process in the ``HOPX_LOCAL_CONFINE`` variable (JSON), which the
process removes before running sandbox code.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path

ENV = "HOPX_LOCAL_CONFINE"

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # x86_64 and the generic table
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2

#: Access rights each ABI version knows (a right a kernel does not know is left out).
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
READ = EXECUTE | READ_FILE | READ_DIR
#: Existing files only (``/dev``): read, write, truncate, device ioctls.
USE = READ | WRITE_FILE | TRUNCATE | IOCTL_DEV
#: Everything in the folder, except making device nodes.
OWN = ((1 << 16) - 1) & ~(MAKE_CHAR | MAKE_BLOCK)
#: System folders sandbox processes may read (those that exist).
SYSTEM_READ = (
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc",
    "/opt",
    "/proc",
    "/sys",
    "/nix",
    "/snap",
    "/var/cache/fontconfig",
    "/run/systemd/resolve",
)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The Landlock ABI version this kernel offers (0: none, or not Linux)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64", "riscv64"):
        return 0
    try:
        version = _libc().syscall(
            _CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
        )
    except (OSError, AttributeError):
        return 0
    return max(version, 0)


def fs_rights(abi: int) -> int:
    """Every filesystem right ABI ``abi`` handles."""
    return next(mask for top, mask in sorted(_FS_BY_ABI.items(), reverse=True) if abi >= top)


def _inside(path: str, other: str) -> bool:
    return path == other or path.startswith(other.rstrip("/") + "/")


def read_paths(server_root: Path, extra: Iterable[str] = ()) -> list[str]:
    """Folders sandbox processes may read: the system's, Python's (prefixes and every
    ``sys.path`` folder) and ``extra``, minus any that holds the server's root."""
    root = os.path.realpath(server_root)
    candidates = [
        *SYSTEM_READ,
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        *sys.path,
        *extra,
    ]
    out: list[str] = []
    for item in candidates:
        if not item or not os.path.isdir(item):
            continue
        real = os.path.realpath(item)
        if _inside(root, real):  # it would expose every sandbox (e.g. "/" or /tmp)
            continue
        if real not in out:
            out.append(real)
    return out


def rules(own: Iterable[str], read: Iterable[str]) -> dict:
    """The rules for one sandbox: folders it owns, and folders it may read."""
    own = [str(p) for p in own]
    return {
        "own": own + (["/dev/shm"] if os.path.isdir("/dev/shm") else []),
        "use": ["/dev"],
        "read": [str(p) for p in read],
    }


def apply(spec: Mapping) -> int:
    """Restrict this process (and what it starts later) to ``spec``; returns the ABI used.

    Raises:
        OSError: a Landlock call failed (the process must then not run sandbox code).
    """
    abi = abi_version()
    if abi <= 0:
        return 0
    libc = _libc()
    handled = fs_rights(abi)
    attr = _RulesetAttr(handled, 0, (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    ruleset = libc.syscall(
        _CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        for key, rights in (("read", READ), ("use", USE), ("own", OWN)):
            for path in spec.get(key, []):
                _add(libc, ruleset, path, rights & handled)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")
        if libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_restrict_self: {os.strerror(err)}")
    finally:
        os.close(ruleset)
    return abi


def _add(libc, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # gone: nothing to allow
    try:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            rights &= READ_FILE | WRITE_FILE | EXECUTE | TRUNCATE | IOCTL_DEV  # a file
        beneath = _PathBeneath(rights, fd)
        if (
            libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(beneath), ctypes.c_uint32(0))
            != 0
        ):
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def apply_from_env(environ: MutableMapping[str, str] | None = None) -> int:
    """Apply the rules in ``HOPX_LOCAL_CONFINE`` (removing it); 0 when there are none."""
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    raw = env.pop(ENV, None)
    if not raw:
        return 0
    return apply(json.loads(raw))


def main() -> None:
    """``python -m hopx_kernel.server.runtime.confinement CMD...``: confine, then exec ``CMD``."""
    apply_from_env()
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
