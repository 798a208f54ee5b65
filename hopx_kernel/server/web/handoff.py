"""[local] ``POST /local/handoff`` and ``POST /local/adopt``: a kernel restart keeps the
embedded server (:mod:`..domain.handoff`). Only a server started with ``--parent-pid``
has them; both need the API key. Official clients never call them."""

from __future__ import annotations

import time

from ..server_errors import ServerError
from .control_plane import ControlHandler


class HandoffHandler(ControlHandler):
    """``POST /local/handoff``: the parent is restarting; keep the server for its successor
    and start a sandbox kernel ahead for it. ``POST /local/adopt`` ``{"parent_pid": N}``:
    the successor takes the server over."""

    def post(self, action: str) -> None:
        handoff = self.state.handoff
        if handoff is None:
            raise ServerError(404, "RESOURCE_NOT_FOUND", "this server does not belong to a kernel")
        if action == "handoff":
            handoff.offer(time.monotonic(), self.json_body().get("note"))
            if self.state.pool is not None:
                self.state.pool.prepare_one()
            self.reply({"grace_seconds": handoff.grace})
            return
        handoff.adopt(self.json_body().get("parent_pid"), time.monotonic())
        self.reply({"parent_pid": handoff.parent_pid})
