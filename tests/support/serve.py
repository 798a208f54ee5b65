"""A separately started ``hopx-kernel serve``, as the HopX cloud stands in for it: the
kernel reaches it in cloud mode (``HOPX_API_KEY`` + ``HOPX_BASE_URL``)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

from hopx_kernel.local_server import LocalServer


class Serve:
    def __init__(self, *args: str) -> None:
        self.server = LocalServer.start(args, command=[sys.executable, "-m", "hopx_kernel", "serve"])
        self.proc = self.server.proc
        self.base_url, self.api_key = self.server.ready()

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def env(self, **extra: str) -> dict:
        return {"HOPX_API_KEY": self.api_key, "HOPX_BASE_URL": self.base_url, **extra}

    def stop(self) -> None:
        assert self.server.stop(grace=15) is not None
