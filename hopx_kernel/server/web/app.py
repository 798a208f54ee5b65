"""The tornado application: server state and routes of both planes."""

from __future__ import annotations

from dataclasses import dataclass

from tornado.web import Application

from ..domain.execution import Context
from ..domain.handoff import Handoff
from ..domain.pool import KernelPool
from ..domain.sandbox import Registry
from . import agent_plane, channel, commands, control_plane, files, handoff, stream, upload
from .base import NotFoundHandler
from .logs import log_request

#: WebSocket messages above this close the connection (1009); between 1 MiB and this
#: size they get an ``error`` frame and the connection stays usable.
WS_HARD_LIMIT = 4 * 1024 * 1024
#: HTTP request bodies (file uploads) above this are refused.
MAX_BODY = 256 * 1024 * 1024


@dataclass
class ServerState:
    """Everything the handlers share.

    Attributes:
        api_key: the control-plane credential.
        base_url: ``http://127.0.0.1:PORT``, known once the socket is bound.
        public_url: the agent URL sandbox objects advertise (``public_host``,
            ``direct_url``); ``base_url`` unless ``--public-url`` says otherwise.
        stream_reuse: several executions may run in turn on one ``/execute/stream``
            socket when the execute frame asks for extensions (docs/protocol.md §2.5 [ext]).
        stream_idle_timeout: seconds a reused socket may sit idle before the agent
            closes it with 1000.
        extensions: whether the agent offers docs/protocol.md §2.2 extensions; False
            (``--no-extensions``) makes it a plain HopX agent that ignores ``"extensions": 1``.
    """

    api_key: str
    registry: Registry
    ctx: Context
    base_url: str = ""
    public_url: str = ""
    stream_reuse: bool = True
    #: seconds a stream client may leave output unread (or pings unanswered) before it is
    #: dropped and its execution stopped
    client_timeout: float = 60.0
    stream_idle_timeout: float = 120.0
    extensions: bool = True
    #: the kernel process the server lives for, and a restart's offer (None: no --parent-pid)
    handoff: Handoff | None = None
    #: where sandbox kernels come from (a handoff starts one ahead for the next kernel)
    pool: KernelPool | None = None


def make_app(state: ServerState) -> Application:
    """The application serving both planes at the root of one host:port."""
    s = {"state": state}
    sandbox_id = r"([A-Za-z0-9_.-]+)"
    routes = [
        (r"/v1/sandboxes/?", control_plane.SandboxesHandler, s),
        (rf"/v1/sandboxes/{sandbox_id}/?", control_plane.SandboxHandler, s),
        (
            rf"/v1/sandboxes/{sandbox_id}/(timeout|token/refresh|pause|resume)/?",
            control_plane.SandboxActionHandler,
            s,
        ),
        (r"/health/?", agent_plane.HealthHandler, s),
        (r"/execute/?", agent_plane.ExecuteHandler, s),
        (r"/execute/stream/?", stream.StreamHandler, s),
        (r"/kernel/channel/?", channel.ChannelHandler, s),
        (r"/v1/templates/?", control_plane.TemplatesHandler, s),
        (r"/local/(handoff|adopt)/?", handoff.HandoffHandler, s),
        (r"/v1/templates/([A-Za-z0-9_.-]+)/?", control_plane.TemplatesHandler, s),
        (r"/info/?", agent_plane.InfoHandler, s),
        (r"/commands/run/?", commands.CommandRunHandler, s),
        (r"/(commands|execute)/background/?", commands.BackgroundHandler, s),
        (r"/(?:execute/)?processes/?", commands.ProcessesHandler, s),
        (r"/execute/kill/([A-Za-z0-9_.-]+)/?", commands.KillHandler, s),
        (r"/processes/([A-Za-z0-9_.-]+)/kill/?", commands.KillHandler, s),
        (r"/execute/kill/?", commands.KillHandler, s),
        (r"/env/?", agent_plane.EnvHandler, s),
        (r"/complete/?", agent_plane.CompleteHandler, s),
        (r"/inspect/?", agent_plane.InspectHandler, s),
        (r"/files/upload/?", upload.UploadHandler, s),
        (r"/files/(read|download|list|exists|write|mkdir|remove)/?", files.FilesHandler, s),
    ]
    return Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=s,
        websocket_max_message_size=WS_HARD_LIMIT,
        # a client that stops reading stops answering pings too: dropped after ~timeout
        websocket_ping_interval=state.client_timeout / 2,
        websocket_ping_timeout=state.client_timeout / 2,
        compress_response=False,
        log_function=log_request,
    )
