"""Agent-plane file endpoints (docs/protocol.md §2.3), confined to the sandbox's folder.

``/workspace`` (and relative paths) map to the sandbox's folder; anything that
escapes it is refused with 403 ``PATH_NOT_ALLOWED`` (:mod:`..domain.paths`). Every file
operation goes through :mod:`..runtime.safefs` (resolved once, race-free, regular files only) in
a worker thread, so a slow disk or a hostile file never blocks the event loop; downloads
are streamed in chunks and reads, writes and downloads have size caps.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os

from tornado.iostream import StreamClosedError

from ..domain.paths import WORKSPACE, host_root, locate
from ..domain.timestamps import rfc3339
from ..runtime import safefs
from ..server_errors import ServerError
from .agent_plane import AgentHandler

#: The largest file ``/files/read`` returns as text.
MAX_READ_BYTES = 64 * 1024 * 1024
#: The largest file ``/files/download`` sends.
MAX_DOWNLOAD_BYTES = 4 * 1024 * 1024 * 1024


def sandbox_path(rel: str, virtual: str = WORKSPACE) -> str:
    """The sandbox path (``/workspace/...``, ``/tmp/...``) shown for a relative path."""
    return f"{virtual}/{rel}" if rel else virtual


def list_item(rel_dir: str, entry: safefs.Entry, virtual: str = WORKSPACE) -> dict:
    """One ``/files/list`` item."""
    return {
        "name": entry.name,
        "path": sandbox_path(f"{rel_dir}/{entry.name}".lstrip("/"), virtual),
        "size": entry.size,
        "is_directory": entry.is_dir,
        "is_dir": entry.is_dir,
        "modified_time": rfc3339(entry.mtime),
        "modified": rfc3339(entry.mtime),  # the JS SDK's FileInfo reads this name
        "permissions": oct(entry.mode & 0o777)[2:].rjust(4, "0"),
    }


def parse_mode(mode: object) -> int | None:
    """A file mode given as an octal string (``"644"``), or None."""
    if not isinstance(mode, str):
        return None
    try:
        return int(mode, 8) & 0o777
    except ValueError:
        raise ServerError(400, "INVALID_REQUEST", f"invalid mode {mode!r}") from None


def write_file(root, rel: str, data: bytes, mode: int | None) -> None:
    """Write ``data`` to ``rel`` (blocking; run it in a thread)."""
    fd = safefs.open_for_write(root, rel)
    try:
        safefs.write_all(fd, data)
        if mode is not None:
            safefs.chmod(fd, mode)
    finally:
        os.close(fd)


class FilesHandler(AgentHandler):
    """``/files/<action>`` for read, download, list, exists, write, mkdir, remove."""

    def _rel(self, value: object) -> tuple[str, str]:
        """(the path as given, the path relative to ``self.root``), setting ``self.root``
        (the host folder of /workspace, /tmp or home) and ``self.virtual``."""
        if value is None:
            raise ServerError(400, "MISSING_PARAMETER", "parameter 'path' is required")
        self.virtual, rel = locate(value)
        self.root = host_root(self.sandbox.folder, self.virtual)
        return str(value), rel

    async def get(self, action: str) -> None:
        raw, rel = self._rel(self.get_query_argument("path", WORKSPACE))
        root = self.root
        if action == "exists":
            self.reply({"exists": await asyncio.to_thread(safefs.exists, root, rel), "path": raw})
        elif action == "list":
            try:
                entries = await asyncio.to_thread(safefs.list_dir, root, rel)
            except safefs.FsError as exc:
                if exc.status in (404, 400):
                    raise ServerError(404, "DIRECTORY_NOT_FOUND", f"not a directory: {raw}") from None
                raise
            items = [list_item(rel, e, self.virtual) for e in entries]
            self.reply({"files": items, "path": raw, "count": len(items)})
        elif action == "read":
            data = await asyncio.to_thread(safefs.read_all, root, rel, MAX_READ_BYTES)
            self.reply({"content": data.decode("utf-8", errors="replace"), "path": raw, "size": len(data)})
        elif action == "download":
            await self._download(root, rel)
        else:
            raise ServerError(405, "METHOD_NOT_ALLOWED", f"use POST or DELETE for /files/{action}")

    async def _download(self, root, rel: str) -> None:
        fd, size = await asyncio.to_thread(safefs.open_regular, root, rel, MAX_DOWNLOAD_BYTES)
        try:
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Length", str(size))
            sent = 0
            while sent < size:
                chunk = await asyncio.to_thread(safefs.read_chunk, fd, min(safefs.CHUNK, size - sent))
                if not chunk:
                    break  # it shrank meanwhile: the client sees a short body
                sent += len(chunk)
                self.write(chunk)
                await self.flush()  # waits for the client: one chunk in memory at a time
        except StreamClosedError:
            return  # the client went away mid-download
        finally:
            os.close(fd)
        self.finish()

    async def post(self, action: str) -> None:
        body = self.json_body()
        raw, rel = self._rel(body.get("path"))
        root = self.root
        if action == "mkdir":
            await asyncio.to_thread(safefs.make_dirs, root, rel)
            self.reply({"success": True, "path": raw})
        elif action == "write":
            content = body.get("content")
            if not isinstance(content, str):
                raise ServerError(400, "MISSING_PARAMETER", "field 'content' (string) is required")
            if body.get("encoding") == "base64":
                try:
                    data = base64.b64decode(content, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise ServerError(400, "INVALID_REQUEST", "'content' is not valid base64") from exc
            else:
                data = content.encode("utf-8", errors="surrogatepass")
            mode = parse_mode(body.get("mode"))
            await asyncio.to_thread(write_file, root, rel, data, mode)
            self.reply({"success": True, "path": raw, "size": len(data)})
        else:
            raise ServerError(405, "METHOD_NOT_ALLOWED", f"use GET or DELETE for /files/{action}")

    async def delete(self, action: str) -> None:
        if action != "remove":
            raise ServerError(405, "METHOD_NOT_ALLOWED", f"use GET or POST for /files/{action}")
        raw, rel = self._rel(self.get_query_argument("path", None))
        await asyncio.to_thread(safefs.remove, self.root, rel)
        self.reply({"success": True, "path": raw})
