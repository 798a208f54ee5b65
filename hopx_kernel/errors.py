"""The one error hierarchy of hopx-kernel.

Every failure a user can meet has a name here and a one-line message that says what
happened and what to do. Foreign exceptions (websockets, tornado, OS errors) are
translated at the I/O seam (``raise OurError(...) from exc``) so users never see a
library's internal traceback.

::

    HopxKernelError
    ├── ConfigError            a HOPX_* variable or a kernelspec value is invalid
    ├── FrameError             a WebSocket frame broke the protocol (docs/protocol.md §2.1)
    ├── ControlPlaneError      the control plane answered with an error status
    │   ├── KeyRejected        401: the API key was refused
    │   ├── NotFound           404: unknown sandbox or template
    │   ├── SandboxExpired     410: the sandbox timed out or was deleted
    │   ├── RateLimited        429: too many requests
    │   └── ServerUnavailable  5xx
    ├── Unreachable            no answer at all from the control plane or the agent
    │   └── TlsError           the TLS handshake failed (certificate not trusted, ...)
    ├── SandboxDisconnected    the stream dropped before ``complete``
    │   └── SandboxStalled     the agent stopped answering pings mid-cell
    ├── MagicError             a magic used wrongly (``magics.py``; shown as ``UsageError``)
    └── ServerError            the local sandbox server's HTTP errors (``server/server_errors.py``)
"""

from __future__ import annotations


class HopxKernelError(Exception):
    """Root of every error raised by hopx-kernel.

    Attributes:
        hint: what the user should do about it, one short sentence (may be empty).
    """

    #: The ``ename`` shown in the notebook for this kind of failure.
    ename = "HopxKernelError"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def line(self) -> str:
        """The one readable line a user sees: what happened, then what to do."""
        if self.hint:
            return f"{self.message.rstrip('.')}. {self.hint}"
        return self.message


class ConfigError(HopxKernelError):
    ename = "HopxConfigError"


class FrameError(HopxKernelError):
    """A frame that breaks docs/protocol.md; ``code`` is the agent error code to answer with."""

    ename = "HopxProtocolError"

    def __init__(self, message: str, code: str = "INVALID_REQUEST") -> None:
        super().__init__(message)
        self.code = code


class ControlPlaneError(HopxKernelError):
    """An error status from the control plane (docs/protocol.md §1).

    Attributes:
        status: the HTTP status.
        code: the machine-readable error code from the body, if any.
        request_id: the server's request id, if any, for support tickets.
    """

    ename = "HopxAPIError"

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        status: int = 0,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code
        self.request_id = request_id


class KeyRejected(ControlPlaneError):
    ename = "HopxAuthError"


class NotFound(ControlPlaneError):
    ename = "HopxNotFound"


class SandboxExpired(ControlPlaneError):
    ename = "SandboxExpired"


class RateLimited(ControlPlaneError):
    ename = "HopxRateLimited"

    def __init__(self, message: str, hint: str = "", *, retry_after: float | None = None, **kw):
        super().__init__(message, hint, **kw)
        self.retry_after = retry_after


class ServerUnavailable(ControlPlaneError):
    ename = "HopxServerError"


class Unreachable(HopxKernelError):
    ename = "HopxUnreachable"


class TlsError(Unreachable):
    ename = "HopxTlsError"


class SandboxDisconnected(HopxKernelError):
    ename = "SandboxDisconnected"


class SandboxStalled(SandboxDisconnected):
    ename = "SandboxStalled"


__all__ = [
    "ConfigError",
    "ControlPlaneError",
    "FrameError",
    "HopxKernelError",
    "KeyRejected",
    "NotFound",
    "RateLimited",
    "SandboxDisconnected",
    "SandboxExpired",
    "SandboxStalled",
    "ServerUnavailable",
    "TlsError",
    "Unreachable",
]
