"""SimulatorTransport: httpx reaches the simulator in-process, sync or async."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx

from ._app import Simulator
from ._record import FAULT_HEADER


class SimulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Send httpx requests to a :class:`Simulator` instead of the network.

    The host part of the URL is ignored, so a client keeps Replicate's base URL. Faults
    injected with ``Simulator.inject(..., fault=...)`` are raised as httpx exceptions:
    ``httpx.ConnectError`` (the request never arrived) or ``httpx.ReadTimeout`` (it was
    handled but its answer is lost).
    """

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, request.read())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import anyio.to_thread

        body = await request.aread()
        # Prefer: wait may sleep; keep that off the event loop.
        return await anyio.to_thread.run_sync(self._answer, request, body)

    def _answer(self, request: httpx.Request, body: bytes) -> httpx.Response:
        path, _, query = request.url.raw_path.decode("ascii").partition("?")
        status, headers, content = self.simulator.handle(
            request.method,
            path,
            dict(parse_qsl(query, keep_blank_values=True)),
            dict(request.headers),
            body,
        )
        fault = headers.pop(FAULT_HEADER, None)
        if fault == "connect":
            raise httpx.ConnectError("[Errno 111] Connection refused (simulated)", request=request)
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out (simulated)", request=request)
        return httpx.Response(status, headers=headers, content=content, request=request)
