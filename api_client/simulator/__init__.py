"""An offline Replicate API, for tests and ``luaq --simulate``.

It follows the vendored OpenAPI schema and the responses recorded in
``replicate-observed-responses.json``: the same paths (all 37 operations), auth,
problem+json errors, pagination with absolute cursor URLs, the prediction lifecycle,
``Prefer: wait``, ``Cancel-After``, file uploads and per-account rate limits. Tests and
benchmarks drive it through ``requests``, ``inject``, ``throttle``, ``set_rate_limits``,
``latency``, ``keep_queued``/``release`` (see ``Simulator``).

    sim = Simulator()
    client = ReplicateClient(simulated_accounts()["default"], transport=SimulatorTransport(sim))

or, over HTTP: ``server = serve(Simulator(public_base_url=None), port=0)``, then
``server.serve_forever()`` in a thread and ``REPLICATE_BASE_URL=server.base_url``.
"""

from ._app import DEFAULT_PUBLIC_BASE_URL, Simulator, download_url
from ._clock import ManualClock
from ._data import DEMO_VERSION_ALIAS, HELLO_VERSION, SDXL_VERSION
from ._http import SimResponse
from ._limits import RateLimits
from ._record import Injection, RecordedRequest
from ._server import SimulatorServer, serve
from ._transport import SimulatorTransport

__all__ = [
    "DEFAULT_PUBLIC_BASE_URL",
    "DEMO_VERSION_ALIAS",
    "HELLO_VERSION",
    "SDXL_VERSION",
    "Injection",
    "ManualClock",
    "RateLimits",
    "RecordedRequest",
    "SimResponse",
    "Simulator",
    "SimulatorServer",
    "SimulatorTransport",
    "download_url",
    "serve",
]
