"""The server's HTTP face: the tornado application, its handlers for both planes, and
what only HTTP needs (credential headers, error bodies, the access log).

Handlers parse a request, call the domain (:mod:`hopx_kernel.server.domain`) and answer;
they hold no sandbox logic of their own.
"""
