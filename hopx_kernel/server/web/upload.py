"""``POST /files/upload``: a multipart upload spooled to disk, never held in memory.

The body streams into an unlinked temporary file as it arrives (:func:`find_parts` then
locates the ``path`` and ``file`` fields in it by scanning in chunks), and the file part
is copied into the sandbox through :mod:`..runtime.safefs`. Server memory stays a few chunks no
matter the upload's size (up to ``MAX_BODY``).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from dataclasses import dataclass

from tornado.web import stream_request_body

from ..domain.paths import host_root, locate
from ..runtime import safefs
from ..server_errors import ServerError
from .agent_plane import AgentHandler

#: Bytes scanned per read while looking for multipart boundaries.
SCAN = 1024 * 1024
#: The most bytes a part's headers, or a non-file field, may take.
MAX_FIELD = 64 * 1024
MAX_PARTS = 16
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)
_NAME = re.compile(rb'\bname="([^"]*)"', re.I)


@dataclass(frozen=True)
class Part:
    """One multipart field: its name and where its content lies in the body."""

    name: str
    start: int
    end: int


def _bad(message: str) -> ServerError:
    return ServerError(400, "INVALID_REQUEST", f"malformed multipart upload: {message}")


def _positions(fd: int, needle: bytes, size: int) -> list[int]:
    out, offset, keep = [], 0, len(needle) - 1
    tail = b""
    while offset < size:
        chunk = os.pread(fd, SCAN, offset)
        if not chunk:
            break
        data = tail + chunk
        base = offset - len(tail)
        at = data.find(needle)
        while at != -1:
            out.append(base + at)
            if len(out) > MAX_PARTS + 1:
                raise _bad(f"more than {MAX_PARTS} parts")
            at = data.find(needle, at + 1)
        tail = data[-keep:] if keep else b""
        offset += len(chunk)
    return out


def find_parts(fd: int, size: int, boundary: bytes) -> list[Part]:
    """The parts of a ``multipart/form-data`` body held in ``fd`` (blocking).

    Raises:
        ServerError: 400 for a body that is not well-formed.
    """
    head = os.pread(fd, len(boundary) + 2, 0)
    if head != b"--" + boundary:
        raise _bad("it does not start with the boundary")
    marks = [-2] + _positions(fd, b"\r\n--" + boundary, size)
    parts = []
    for begin, end in zip(marks, marks[1:], strict=False):
        start = begin + 2 + 2 + len(boundary)  # CRLF, "--", boundary
        header = os.pread(fd, MAX_FIELD, start)
        if not header.startswith(b"\r\n"):
            raise _bad("a boundary is not followed by a line break")
        stop = header.find(b"\r\n\r\n", 2)
        if stop == -1:
            raise _bad("a part's headers are too long or unterminated")
        name = _NAME.search(header[:stop])
        if name is None:
            raise _bad("a part has no name")
        parts.append(Part(name.group(1).decode("utf-8", "replace"), start + stop + 4, end))
    return parts


def store(spool: int, size: int, boundary: bytes, root) -> tuple[str, int]:
    """Copy the upload's ``file`` part to its ``path`` in the sandbox; (path, bytes)."""
    parts = {p.name: p for p in find_parts(spool, size, boundary)}
    if "file" not in parts:
        raise ServerError(400, "MISSING_PARAMETER", "multipart field 'file' is required")
    if "path" not in parts:
        raise ServerError(400, "MISSING_PARAMETER", "parameter 'path' is required")
    field = parts["path"]
    if field.end - field.start > MAX_FIELD:
        raise ServerError(400, "INVALID_PATH", "'path' is too long")
    raw = os.pread(spool, field.end - field.start, field.start).decode("utf-8", "replace")
    virtual, rel = locate(raw)
    data = parts["file"]
    fd = safefs.open_for_write(host_root(root, virtual), rel)
    try:
        offset = data.start
        while offset < data.end:
            chunk = os.pread(spool, min(safefs.CHUNK, data.end - offset), offset)
            if not chunk:
                break
            safefs.write_all(fd, chunk)
            offset += len(chunk)
    finally:
        os.close(fd)
    return raw, data.end - data.start


@stream_request_body
class UploadHandler(AgentHandler):
    """``POST /files/upload`` (multipart: ``file`` and ``path``)."""

    _spool = None

    def prepare(self) -> None:
        super().prepare()  # credentials first: nothing is spooled for a stranger
        if self.request.method != "POST":
            raise ServerError(405, "METHOD_NOT_ALLOWED", "use POST for /files/upload")
        match = _BOUNDARY.search(self.request.headers.get("Content-Type", ""))
        if match is None:
            raise ServerError(400, "INVALID_REQUEST", "send the upload as multipart/form-data")
        self._boundary = match.group(1).encode("latin-1", "replace")
        self._spool = tempfile.TemporaryFile(prefix="hopx-upload-")
        self._size = 0

    async def data_received(self, chunk: bytes) -> None:
        if self._spool is not None:
            self._size += len(chunk)
            await asyncio.to_thread(self._spool.write, chunk)

    async def post(self) -> None:
        try:
            spool = self._spool
            if spool is None:  # (cannot be: prepare() spools every POST)
                raise RuntimeError("upload without a spool file")
            await asyncio.to_thread(spool.flush)
            raw, size = await asyncio.to_thread(
                store, spool.fileno(), self._size, self._boundary, self.sandbox.folder
            )
        finally:
            self._close()
        self.reply({"success": True, "path": raw, "size": size})

    def _close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def on_finish(self) -> None:
        self._close()

    def on_connection_close(self) -> None:
        self._close()
