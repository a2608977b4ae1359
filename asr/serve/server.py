"""Run the application with uvicorn on a socket bound first (a taken port is a one-line error)."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from asr.errors import ConfigError


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ConfigError(f"--host {host}: {err}") from err
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port}: {err.strerror or err}") from err
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, **config: Any) -> uvicorn.Server:
    """A uvicorn server that keeps the toolkit's logging (its records go through our handlers and
    their secret scrubbing) and waits for requests in flight when told to stop."""
    return uvicorn.Server(uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=None, **config))


def serve(app: Any, sock: socket.socket) -> None:
    """Serve until SIGINT/SIGTERM; uvicorn then stops accepting, finishes requests in flight and
    runs the application's shutdown (the decoder drains its queue)."""
    make_server(app).run(sockets=[sock])
