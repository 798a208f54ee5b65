"""The embedded local sandbox: a loopback stand-in for the HopX cloud.

One tornado application on 127.0.0.1 serves both planes of docs/protocol.md: the control
plane (``/v1/sandboxes``, API key) and the agent plane (``/health``, ``/execute``,
``/execute/stream``, ``/files/*``, ``/env``, [ext] ``/complete`` and ``/inspect``),
which is routed by each sandbox's own bearer token. Python runs in one IPython kernel
per sandbox; bash and javascript run as one subprocess per execution.

Three layers: :mod:`.web` (the HTTP face: app, handlers), :mod:`.domain` (sandboxes,
pool, executions, processes, environment, paths) and :mod:`.runtime` (the IPython
kernels, subprocesses, confinement and file operations sandbox code runs on).

Start it with ``hopx-kernel serve`` or ``python -m hopx_kernel.server``
(see :mod:`hopx_kernel.server.main`).
"""
