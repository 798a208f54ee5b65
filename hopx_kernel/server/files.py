"""Agent-plane file endpoints (docs/protocol.md §2.3), confined to the sandbox's folder.

``/workspace`` (and relative paths) map to the sandbox's folder; anything that
escapes it is refused with 403 ``PATH_NOT_ALLOWED`` (:mod:`.paths`).
"""

from __future__ import annotations

import base64
import binascii
import shutil
from pathlib import Path

from .agent import AgentHandler
from .bodies import rfc3339
from .errors import ServerError
from .paths import private_folders, to_host_path, to_sandbox_path

#: The largest file ``/files/read`` returns as text (download has no such limit).
MAX_READ_BYTES = 64 * 1024 * 1024


def _not_found(path: str) -> ServerError:
    return ServerError(404, "FILE_NOT_FOUND", f"no such file or directory: {path}", {"path": path})


def list_entry(root: Path, entry: Path) -> dict:
    """One ``/files/list`` item."""
    info = entry.lstat()
    is_dir = entry.is_dir()
    return {
        "name": entry.name,
        "path": to_sandbox_path(root, entry),
        "size": 0 if is_dir else info.st_size,
        "is_directory": is_dir,
        "is_dir": is_dir,
        "modified_time": rfc3339(info.st_mtime),
        "modified": rfc3339(info.st_mtime),  # the JS SDK's FileInfo reads this name
        "permissions": oct(info.st_mode & 0o777)[2:].rjust(4, "0"),
    }


class FilesHandler(AgentHandler):
    """``/files/<action>`` for read, download, list, exists, write, upload, mkdir, remove."""

    def _path(self, value: str | None) -> tuple[str, Path]:
        if value is None:
            raise ServerError(400, "MISSING_PARAMETER", "parameter 'path' is required")
        return value, to_host_path(self.sandbox.folder, value)

    def get(self, action: str) -> None:
        raw, host = self._path(self.get_query_argument("path", "/workspace"))
        if action == "exists":
            self.reply({"exists": host.exists(), "path": raw})
        elif action == "list":
            if not host.is_dir():
                raise ServerError(404, "DIRECTORY_NOT_FOUND", f"not a directory: {raw}")
            items = [list_entry(self.sandbox.folder, e) for e in sorted(host.iterdir())]
            self.reply({"files": items, "path": raw, "count": len(items)})
        elif action in ("read", "download"):
            if not host.is_file():
                raise _not_found(raw)
            data = host.read_bytes() if action == "download" else self._read_text(host, raw)
            if action == "download":
                self.set_header("Content-Type", "application/octet-stream")
                self.finish(data)
            else:
                self.reply({"content": data, "path": raw, "size": host.stat().st_size})
        else:
            raise ServerError(405, "METHOD_NOT_ALLOWED", f"use POST or DELETE for /files/{action}")

    @staticmethod
    def _read_text(host: Path, raw: str) -> str:
        if host.stat().st_size > MAX_READ_BYTES:
            raise ServerError(413, "INVALID_REQUEST",
                              f"{raw} is too large to read as text; use /files/download")
        return host.read_bytes().decode("utf-8", errors="replace")

    def post(self, action: str) -> None:
        if action == "upload":
            files = self.request.files.get("file")
            if not files:
                raise ServerError(400, "MISSING_PARAMETER", "multipart field 'file' is required")
            raw, host = self._path(self.get_body_argument("path", None))
            self._write(raw, host, files[0]["body"])
            return
        body = self.json_body()
        raw, host = self._path(body.get("path"))
        if action == "mkdir":
            if host.exists() and not host.is_dir():
                raise ServerError(409, "FILE_ALREADY_EXISTS", f"a file is in the way: {raw}")
            host.mkdir(parents=True, exist_ok=True)
            self.reply({"success": True, "path": raw})
        elif action == "write":
            content = body.get("content")
            if not isinstance(content, str):
                raise ServerError(400, "MISSING_PARAMETER", "field 'content' (string) is required")
            if body.get("encoding") == "base64":
                try:
                    data = base64.b64decode(content, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise ServerError(400, "INVALID_REQUEST", "'content' is not valid base64") \
                        from exc
            else:
                data = content.encode("utf-8")
            self._write(raw, host, data, body.get("mode"))
        else:
            raise ServerError(405, "METHOD_NOT_ALLOWED", f"use GET or DELETE for /files/{action}")

    def _write(self, raw: str, host: Path, data: bytes, mode: object = None) -> None:
        if host == self.sandbox.folder or host.is_dir():
            raise ServerError(400, "INVALID_PATH", f"{raw} is a directory")
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(data)
        if isinstance(mode, str):
            try:
                host.chmod(int(mode, 8) & 0o777)
            except ValueError as exc:
                raise ServerError(400, "INVALID_REQUEST", f"invalid mode {mode!r}") from exc
        self.reply({"success": True, "path": raw, "size": len(data)})

    def delete(self, action: str) -> None:
        if action != "remove":
            raise ServerError(405, "METHOD_NOT_ALLOWED", f"use GET or POST for /files/{action}")
        raw, host = self._path(self.get_query_argument("path", None))
        if host in private_folders(self.sandbox.folder):
            raise ServerError(403, "PATH_NOT_ALLOWED", f"the {raw} folder itself stays")
        if host.is_dir() and not host.is_symlink():
            shutil.rmtree(host)
        elif host.exists() or host.is_symlink():
            host.unlink()
        else:
            raise _not_found(raw)
        self.reply({"success": True, "path": raw})
