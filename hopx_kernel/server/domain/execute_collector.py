"""The answer of a blocking ``POST /execute`` (docs/protocol.md §2): the frames of one
execution flattened into one JSON body, with stdout and stderr joined (up to a cap), rich
output under flat keys (``png``, ``html``, ...) and the error folded into ``stderr``."""

from __future__ import annotations

from typing import Any

from ... import frames
from ...text import strip_ansi

#: Flat rich-output keys of ``/execute`` by MIME type (docs/protocol.md §2).
RICH_KEYS = {
    "image/png": "png",
    "text/html": "html",
    "image/svg+xml": "svg",
    "text/markdown": "markdown",
    "application/json": "json",
}

#: Characters of stdout + stderr one ``/execute`` answer holds (the rest is dropped).
MAX_EXECUTE_OUTPUT = 32 * 1024 * 1024


class ExecuteCollector:
    """Collects the frames of one ``/execute`` call into its flat JSON answer."""

    def __init__(self, max_output: int = MAX_EXECUTE_OUTPUT) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.rich: dict[str, Any] = {}
        self.result: frames.Result | None = None
        self.error: frames.AgentError | None = None
        self.room = max_output  # characters of stdout + stderr still kept
        self.dropped = 0

    async def emit(self, frame: frames.AgentFrame) -> None:
        if isinstance(frame, frames.Stream):
            data = frame.data
            if len(data) > self.room:
                self.dropped += len(data) - self.room
                data = data[: self.room]
            self.room -= len(data)
            if data:
                (self.stdout if frame.name == "stdout" else self.stderr).append(data)
        elif isinstance(frame, frames.Display):
            self._take_rich(frame.data)
        elif isinstance(frame, frames.ExecuteResult):  # a body that asked for it in order
            self._take_rich(frame.data)
            if "text/plain" in frame.data:
                self.rich["result"] = frame.data["text/plain"]
        elif isinstance(frame, frames.Result):
            self.result = frame
            if frame.data:
                self._take_rich(frame.data)
                if "text/plain" in frame.data:
                    self.rich["result"] = frame.data["text/plain"]
            if frame.traceback:
                self.stderr.append(strip_ansi("\n".join(frame.traceback)) + "\n")
        elif isinstance(frame, frames.AgentError):
            self.error = frame

    def _take_rich(self, data: dict[str, Any]) -> None:
        for mime, key in RICH_KEYS.items():
            if mime in data:
                self.rich[key] = data[mime]

    def body(self, success: bool, language: str) -> dict[str, Any]:
        if self.dropped:
            self.stderr.append(
                f"\n[hopx] {self.dropped} characters of output were dropped: "
                f"/execute keeps at most {MAX_EXECUTE_OUTPUT}; use "
                "/execute/stream for more\n"
            )
        stderr = "".join(self.stderr)
        if self.error is not None:
            stderr += ("\n" if stderr and not stderr.endswith("\n") else "") + self.error.error
        body: dict[str, Any] = {
            "success": success,
            "stdout": "".join(self.stdout),
            "stderr": stderr,
            "exit_code": self.result.exit_code if self.result else 1,
            "execution_time": self.result.execution_time if self.result else 0.0,
            "language": language,
            **self.rich,
        }
        if self.error is not None:
            body["error"] = self.error.error
            body["message"] = self.error.error  # the JS SDK shows data.message
            body["code"] = self.error.code
        return body
