"""Magics the kernel handles itself; everything else goes to the sandbox untouched.

- ``%hopx``: where the code runs (mode, sandbox id, agent version, template, uptime,
  remaining timeout).
- ``%hopx upload LOCAL [REMOTE]`` / ``%hopx download REMOTE [LOCAL]``: copy files between
  the machine running the kernel and the sandbox, through the agent's ``/files/*``.
- ``%%bash`` (``%%sh``) and ``%%javascript`` (``%%js``, ``%%node``) cells run in the sandbox
  with the stream's ``language`` field.

:func:`parse_magic` is pure; :func:`run_magic` does the I/O.
"""

from __future__ import annotations

import base64
import os
import posixpath
import shlex
from dataclasses import dataclass

from .errors import HopxKernelError

CELL_LANGUAGES = {
    "bash": "bash",
    "sh": "bash",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
}
REMOTE_HOME = "/workspace"


class MagicError(HopxKernelError):
    """A magic used wrongly; the message says how to use it."""

    ename = "UsageError"


@dataclass(frozen=True)
class Magic:
    name: str
    args: tuple[str, ...] = ()
    body: str = ""
    language: str = "python"
    #: handled in the kernel process rather than sent to the sandbox
    local: bool = False


USAGE = "usage: %hopx | %hopx upload LOCAL [REMOTE] | %hopx download REMOTE [LOCAL]"


def parse_magic(code: str) -> Magic | None:
    """Recognise a kernel-handled magic; ``None`` for anything else.

    Raises:
        MagicError: ``%hopx`` with arguments it does not understand.

    Example:
        >>> parse_magic("%%bash\\necho hi").language
        'bash'
        >>> parse_magic("%hopx upload data.csv").args
        ('upload', 'data.csv')
        >>> parse_magic("print(1)") is None
        True
    """
    text = code.lstrip("\n")
    first, _, rest = text.partition("\n")
    head = first.strip()
    if head.startswith("%%"):
        name = head[2:].split(None, 1)[0] if len(head) > 2 else ""
        if name in CELL_LANGUAGES:
            return Magic(name=name, body=rest, language=CELL_LANGUAGES[name])
        return None
    if head == "%hopx" or head.startswith("%hopx "):
        if rest.strip():
            raise MagicError("%hopx must be alone in its cell; " + USAGE)
        try:
            args = tuple(shlex.split(head[len("%hopx") :]))
        except ValueError as exc:
            raise MagicError(f"{exc}; {USAGE}") from exc
        if args and args[0] not in ("upload", "download", "info"):
            raise MagicError(f"unknown %hopx command {args[0]!r}; {USAGE}")
        if args and args[0] in ("upload", "download") and not 2 <= len(args) <= 3:
            raise MagicError(USAGE)
        return Magic(name="hopx", args=args, local=True)
    return None


def remote_path(path: str) -> str:
    """A sandbox path: relative paths are under /workspace."""
    return path if path.startswith("/") else posixpath.join(REMOTE_HOME, path)


def format_info(facts: dict) -> str:
    """``%hopx`` output, one fact per line."""
    labels = {
        "mode": "mode",
        "control_plane": "control plane",
        "sandbox": "sandbox",
        "sandbox_id": "sandbox id",
        "template": "template",
        "agent": "agent",
        "agent_version": "agent version",
        "extensions": "stream extensions",
        "uptime_seconds": "uptime (s)",
        "timeout_remaining_seconds": "timeout left (s)",
        "isolation": "isolation",
        "error": "error",
    }
    width = max(len(v) for v in labels.values())
    return "".join(f"{labels.get(k, k):<{width}}  {v}\n" for k, v in facts.items() if v is not None)


async def run_magic(magic: Magic, kernel, publish) -> None:
    """Run a local magic; output goes through ``publish(msg_type, content)``."""
    session = kernel.sandbox
    command = magic.args[0] if magic.args else "info"
    if command == "info":
        if session.describe().get("sandbox") in ("starting", "not started yet"):
            try:
                await session.ready()
            except Exception:  # describe() below says what state it is in
                pass
        publish("stream", {"name": "stdout", "text": format_info(session.describe())})
        return
    if command == "upload":
        local = os.path.expanduser(magic.args[1])
        remote = remote_path(magic.args[2] if len(magic.args) > 2 else os.path.basename(local))
        try:
            with open(local, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise MagicError(f"cannot read {local}: {exc.strerror}") from exc
        await session.agent_call(
            "POST",
            "/files/write",
            body={"path": remote, "content": base64.b64encode(data).decode(), "encoding": "base64"},
            timeout=300,
        )
        publish("stream", {"name": "stdout", "text": f"uploaded {local} → {remote} ({len(data)} bytes)\n"})
        return
    remote = remote_path(magic.args[1])
    local = os.path.expanduser(magic.args[2] if len(magic.args) > 2 else posixpath.basename(remote))
    data = await session.agent_call("GET", "/files/download", query={"path": remote}, raw=True, timeout=300)
    try:
        with open(local, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise MagicError(f"cannot write {local}: {exc.strerror}") from exc
    publish("stream", {"name": "stdout", "text": f"downloaded {remote} → {local} ({len(data)} bytes)\n"})
