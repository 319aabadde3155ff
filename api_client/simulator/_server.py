"""Serve a simulator over HTTP with the standard library (``luaq simulator``)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from ._app import Simulator
from ._record import FAULT_HEADER


class SimulatorServer(ThreadingHTTPServer):
    """A bound (not yet serving) HTTP server; call ``serve_forever()`` and later
    ``shutdown()`` and ``server_close()``. ``port`` is the bound port (useful with 0)."""

    daemon_threads = True
    # The standard library's backlog is 5 pending connections: hundreds of jobs connecting
    # at once overflowed it, and the kernel dropped their SYNs (a retry after 1 s, then 3 s),
    # or reset them. Replicate's servers accept far more.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        """The Replicate base URL to give clients: ``http://host:port/v1``."""
        return f"http://{self.server_address[0]}:{self.port}/v1"


def serve(simulator: Simulator, host: str = "127.0.0.1", port: int = 8787) -> SimulatorServer:
    """Bind ``simulator`` to ``host:port`` (port 0 picks a free one) and return the server.

    Give the simulator ``public_base_url=None`` (or the server's ``base_url``) so the
    URLs in its answers point back at this server.
    """
    return SimulatorServer((host, port), simulator)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes; with Nagle's algorithm on, the body
    # waits for the client's delayed ACK of the headers (40 ms on Linux), which Replicate
    # never adds to a request.
    disable_nagle_algorithm = True
    server: SimulatorServer

    def _dispatch(self) -> None:
        body = self._body()
        path, _, query = self.path.partition("?")
        status, headers, content = self.server.simulator.handle(
            self.command,
            path,
            dict(parse_qsl(query, keep_blank_values=True)),
            dict(self.headers.items()),
            body,
        )
        if headers.pop(FAULT_HEADER, None):
            # An injected transport fault: drop the connection without an answer.
            self.close_connection = True
            return
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_QUERY = do_HEAD = _dispatch

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def log_message(self, format: str, *args: object) -> None:
        # Quiet by default: request lines would drown test and CLI output.
        pass
