"""File operations confined to one folder, resolved once and race-free. Blocking: call
them off the event loop (``asyncio.to_thread``).

Every operation takes a **root** (a host folder, e.g. a sandbox's ``/workspace``) and a
**relative path** inside it (``"a/b.txt"``, ``""`` for the root itself; see
:func:`hopx_kernel.server.domain.paths.to_relative`). The path is resolved component by
component through directory file descriptors, so sandbox code that swaps a folder for a
symlink between a check and a use cannot redirect the operation outside the root:

- with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`` (Linux >= 5.6) symlinks that
  stay inside the root are followed and anything leaving it fails with ``EXDEV``;
- elsewhere each component is opened with ``O_NOFOLLOW`` (symlinks are refused).

Only regular files are read or written: files are opened ``O_NONBLOCK`` and checked with
``fstat``, so a FIFO, socket or device answers "not a regular file" at once instead of
hanging the server.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import shutil
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..server_errors import ServerError

#: Bytes per read or write of a streamed file.
CHUNK = 1024 * 1024
_SYS_OPENAT2 = 437  # the same on x86_64 and the generic table (aarch64, riscv64)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_openat2_works: bool | None = None if platform.system() == "Linux" else False


@dataclass(frozen=True)
class Entry:
    """One directory entry (``lstat`` data: a symlink is reported as itself)."""

    name: str
    is_dir: bool
    size: int
    mtime: float
    mode: int


class FsError(ServerError):
    """A file operation the client asked for cannot be done (a 4xx)."""


def _refused(path: str, why: str, status: int = 400, code: str = "INVALID_PATH") -> FsError:
    return FsError(status, code, f"{path or '/workspace'}: {why}", {"path": path})


def _os_error(exc: OSError, path: str) -> FsError:
    """The client-facing error for an OSError on ``path`` (never a 500)."""
    e = exc.errno
    if e == errno.ENOENT:
        return _refused(path, "no such file or directory", 404, "FILE_NOT_FOUND")
    if e in (errno.EXDEV, errno.ELOOP):
        return _refused(
            path, "the path leaves the sandbox's folder through a symlink (or loops)", 403, "PATH_NOT_ALLOWED"
        )
    if e == errno.ENOTDIR:
        return _refused(path, "a part of the path is not a directory", 400, "INVALID_PATH")
    if e == errno.EISDIR:
        return _refused(path, "is a directory", 400, "INVALID_PATH")
    if e == errno.EEXIST:
        return _refused(path, "a file is in the way", 409, "FILE_ALREADY_EXISTS")
    if e in (errno.ENAMETOOLONG,):
        return _refused(path, "a name in the path is too long", 400, "INVALID_PATH")
    if e in (errno.EACCES, errno.EPERM):
        return _refused(path, "permission denied", 403, "PERMISSION_DENIED")
    if e == errno.ENOTEMPTY:
        return _refused(path, "the directory is not empty", 409, "CONFLICT")
    if e in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return _refused(path, "no space left for this file", 507, "INSUFFICIENT_STORAGE")
    if e in (errno.EMFILE, errno.ENFILE):
        return _refused(path, "the server is out of file descriptors", 503, "SERVICE_UNAVAILABLE")
    return _refused(path, f"cannot be used ({os.strerror(e or 0)})", 400, "INVALID_PATH")


def _openat2(dir_fd: int, rel: str, flags: int, mode: int) -> int | None:
    """``openat2`` beneath ``dir_fd``; None when the kernel lacks it."""
    global _openat2_works
    if _openat2_works is False:
        return None
    how = _OpenHow(
        flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS
    )
    fd = _libc.syscall(_SYS_OPENAT2, dir_fd, os.fsencode(rel or "."), ctypes.byref(how), ctypes.sizeof(how))
    if fd >= 0:
        _openat2_works = True
        return fd
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EPERM) and _openat2_works is None:  # EPERM: seccomp
        _openat2_works = False
        return None
    raise OSError(err, os.strerror(err), rel)


def _walk_open(dir_fd: int, rel: str, flags: int, mode: int) -> int:
    """Open ``rel`` beneath ``dir_fd`` one ``O_NOFOLLOW`` component at a time."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts:
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=dir_fd)
    fd = os.dup(dir_fd)
    try:
        for part in parts[:-1]:
            if part == "..":
                raise OSError(errno.EXDEV, "'..' is not allowed", rel)
            nxt = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if parts[-1] == "..":
            raise OSError(errno.EXDEV, "'..' is not allowed", rel)
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
    finally:
        os.close(fd)


def open_beneath(root_fd: int, rel: str, flags: int, mode: int = 0o666) -> int:
    """A file descriptor for ``rel`` inside the folder ``root_fd``; never outside it.

    Raises:
        OSError: ``EXDEV``/``ELOOP`` when the path leaves the folder, or the usual errors.
    """
    fd = _openat2(root_fd, rel, flags, mode)
    return fd if fd is not None else _walk_open(root_fd, rel, flags, mode)


@contextlib.contextmanager
def _fd(root: Path, rel: str, flags: int, mode: int = 0o666) -> Iterator[int]:
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        fd = open_beneath(root_fd, rel, flags, mode)
    except OSError as exc:
        raise _os_error(exc, rel) from None
    finally:
        os.close(root_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _split(rel: str) -> tuple[str, str]:
    parent, _, name = rel.rpartition("/")
    return parent, name


def _regular(fd: int, rel: str) -> os.stat_result:
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise _refused(rel, "is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise _refused(
            rel, "is not a regular file (a FIFO, socket or device); only regular files are read and written"
        )
    return info


# ---------------------------------------------------------------- queries


def exists(root: Path, rel: str) -> bool:
    """Whether ``rel`` names something inside the root (a symlink leaving it: False)."""
    try:
        with _fd(root, rel, os.O_PATH):
            return True
    except FsError:
        return False


def is_dir(root: Path, rel: str) -> bool:
    """Whether ``rel`` is a directory inside the root."""
    try:
        with _fd(root, rel, _DIR_FLAGS):
            return True
    except FsError:
        return False


def open_dir(root: Path, rel: str) -> int:
    """A file descriptor (``O_DIRECTORY``, close-on-exec) for the directory ``rel`` inside
    the root, resolved once: the caller uses this very directory (e.g. as a child's working
    directory through ``/proc/self/fd/N``) and closes the descriptor.

    Raises:
        FsError: 403 ``PATH_NOT_ALLOWED`` when the path leaves the root through a symlink,
            404 ``DIRECTORY_NOT_FOUND`` when it is missing or not a directory.
    """
    root_fd = -1
    try:
        root_fd = os.open(root, _DIR_FLAGS)
        return open_beneath(root_fd, rel, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise _refused(rel, "is not a directory in the sandbox", 404, "DIRECTORY_NOT_FOUND") from None
        raise _os_error(exc, rel) from None
    finally:
        if root_fd >= 0:
            os.close(root_fd)


def list_dir(root: Path, rel: str) -> list[Entry]:
    """The entries of the directory ``rel``, sorted by name."""
    with _fd(root, rel, _DIR_FLAGS) as fd:
        out = []
        for name in sorted(os.listdir(fd)):
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue  # removed meanwhile
            is_directory = stat.S_ISDIR(info.st_mode)
            out.append(
                Entry(name, is_directory, 0 if is_directory else info.st_size, info.st_mtime, info.st_mode)
            )
        return out


# ---------------------------------------------------------------- reading


def open_regular(root: Path, rel: str, max_bytes: int | None = None) -> tuple[int, int]:
    """An open descriptor of the regular file ``rel`` and its size; the caller closes it.

    Raises:
        FsError: not found, not a regular file, outside the root, or over ``max_bytes``
            (413).
    """
    with _fd(root, rel, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY) as fd:
        info = _regular(fd, rel)
        if max_bytes is not None and info.st_size > max_bytes:
            raise _refused(
                rel, f"is {info.st_size} bytes, over the {max_bytes}-byte limit here", 413, "FILE_TOO_LARGE"
            )
        return os.dup(fd), info.st_size


def read_chunk(fd: int, size: int = CHUNK) -> bytes:
    """The next chunk of an open file (b"" at its end)."""
    return os.read(fd, size)


def read_all(root: Path, rel: str, max_bytes: int) -> bytes:
    """The whole regular file ``rel`` (at most ``max_bytes``; larger is a 413)."""
    fd, _ = open_regular(root, rel, max_bytes)
    try:
        parts, total = [], 0
        while chunk := os.read(fd, CHUNK):
            total += len(chunk)
            if total > max_bytes:  # it grew since the check
                raise _refused(rel, f"is over the {max_bytes}-byte limit here", 413, "FILE_TOO_LARGE")
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- writing


def make_dirs(root: Path, rel: str) -> None:
    """``mkdir -p rel`` inside the root (each level created and entered without following
    symlinks)."""
    root_fd = os.open(root, _DIR_FLAGS)
    fd = root_fd
    try:
        for part in [p for p in rel.split("/") if p not in ("", ".")]:
            if part == "..":
                raise _refused(rel, "'..' is not allowed", 403, "PATH_NOT_ALLOWED")
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                nxt = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise _refused(
                        rel, "a file or symlink is in the way", 409, "FILE_ALREADY_EXISTS"
                    ) from None
                raise _os_error(exc, rel) from None
            if fd != root_fd:
                os.close(fd)
            fd = nxt
    except OSError as exc:
        raise _os_error(exc, rel) from None
    finally:
        if fd != root_fd:
            os.close(fd)
        os.close(root_fd)


def open_for_write(root: Path, rel: str) -> int:
    """A descriptor of the regular file ``rel``, created or emptied; the caller closes it.

    Parent folders are made. A final symlink, FIFO, socket or device is refused.
    """
    parent, name = _split(rel)
    if not name or name in (".", ".."):
        raise _refused(rel, "is a directory")
    make_dirs(root, parent)
    with _fd(root, parent, _DIR_FLAGS) as dir_fd:
        try:
            fd = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                0o666,
                dir_fd=dir_fd,
            )
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a FIFO nobody reads
                raise _refused(
                    rel,
                    "is not a regular file (a FIFO, socket or device); only "
                    "regular files are read and written",
                ) from None
            raise _os_error(exc, rel) from None
    try:
        _regular(fd, rel)
        os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:CHUNK]) :]


def chmod(fd: int, mode: int) -> None:
    """Set the permission bits of an open file."""
    os.fchmod(fd, mode & 0o777)


# ---------------------------------------------------------------- removing


def _rmtree_at(dir_fd: int, name: str) -> None:
    """``shutil.rmtree(name, dir_fd=dir_fd)`` for Python 3.10: through descriptors, never
    following a symlink (a link inside is unlinked, its target stays)."""
    fd = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        with os.scandir(fd) as entries:
            for entry in list(entries):
                if entry.is_dir(follow_symlinks=False):
                    _rmtree_at(fd, entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def remove(root: Path, rel: str) -> None:
    """Remove the file, symlink or folder ``rel`` (a folder with everything in it).

    The entry is looked up in its parent's descriptor and a folder is removed through
    descriptors too (``shutil.rmtree(dir_fd=...)``), so a swapped symlink removes the
    link, never its target.
    """
    parent, name = _split(rel)
    if not name:
        raise _refused(rel, "the /workspace folder itself stays", 403, "PATH_NOT_ALLOWED")
    with _fd(root, parent, _DIR_FLAGS) as dir_fd:
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                os.unlink(name, dir_fd=dir_fd)
            elif sys.version_info >= (3, 11):
                shutil.rmtree(name, dir_fd=dir_fd)
            else:  # rmtree has no dir_fd before 3.11
                _rmtree_at(dir_fd, name)
        except OSError as exc:
            raise _os_error(exc, rel) from None
