"""Errors of the local sandbox server, all under :class:`hopx_kernel.errors.HopxKernelError`.

::

    HopxKernelError
    └── ServerError            an HTTP-visible failure: status + machine-readable code
        ├── PathNotAllowed     403: a path escapes the sandbox's folder
        └── SandboxGone        410: the sandbox expired, was deleted or died
"""

from __future__ import annotations

from typing import Any

from ..errors import HopxKernelError


class ServerError(HopxKernelError):
    """A failure answered with an HTTP error body.

    Attributes:
        status: the HTTP status to answer with.
        code: the machine-readable error code (e.g. ``INVALID_REQUEST``).
        details: extra structured fields for the error body.
    """

    ename = "HopxLocalServerError"

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}


class PathNotAllowed(ServerError):
    """A file path that leaves the sandbox's ``/workspace`` folder."""

    def __init__(self, path: str) -> None:
        super().__init__(
            403,
            "PATH_NOT_ALLOWED",
            f"path {path!r} is outside the sandbox's folders (/workspace, /tmp, /root)",
            {"path": path},
        )


class SandboxGone(ServerError):
    """The sandbox was ended (expired, deleted, or its Python process died)."""

    def __init__(self, message: str) -> None:
        super().__init__(410, "SANDBOX_EXPIRED", message)
