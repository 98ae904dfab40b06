"""Loopback stand-ins: one way to serve them for a `with` block, as moto's ThreadedMotoServer
serves moto.

Each stand-in is a standard-library HTTP server on 127.0.0.1. `LoopbackServer` binds port 0, so
the kernel picks a port no other test and no other pytest-xdist worker holds (the one exception,
Kaggle's fixed localhost:7777, is tests/kaggle_standin.py's). `serving` runs a server on a thread
for the block and always shuts it down and closes its socket after, pass or fail, so no thread
or port outlives the test that started it. `StandInHandler` is what every stand-in's handler
shares: a whole answer in one call, and no access log in the test output.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, TypeVar

Server = TypeVar("Server", bound=socketserver.BaseServer)

SHUTDOWN_S = 10
"""How long the serving thread may take to end once asked: serve_forever polls every 0.5 s."""


class StandInHandler(BaseHTTPRequestHandler):
    """A stand-in's request handler; `headers_always` go with every reply (AWS's request id)."""

    headers_always: ClassVar[dict[str, str]] = {}

    def reply(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Status, headers and body, with the body's length."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in {**self.headers_always, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1, on a free port the kernel picks unless `port` is
    given; `url` is where clients reach it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """`server` answering on its own thread for the block; shut down and closed after."""
    thread = threading.Thread(
        target=server.serve_forever, name=f"serving {type(server).__name__}", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(SHUTDOWN_S)
