"""luaq's Replicate HTTP API client.

The operation catalog (built from the vendored ``openapi.json``), an httpx client that
validates and sends any operation (retrying as a ``RetryPolicy`` allows), accounts from
the environment, typed errors, webhook verification, and ``ReplicateProvider``, the
sandbox's door to Replicate (the 37 operations plus the ``run``, ``wait``, ``paginate`` and
``verify_webhook`` helpers). ``api_client.simulator`` is an
offline Replicate reachable through an httpx transport or over HTTP.

api_client never imports lupa, celery, redis or the sandbox.
"""

from ._abandon import abandon_when
from ._accounts import DEFAULT_BASE_URL, Account, accounts_from_env, simulated_accounts
from ._catalog import Catalog, Operation, Parameter, RequestBody, load_catalog
from ._client import ReplicateClient, Response, new_http_client
from ._errors import (
    APIError,
    ArgumentError,
    CallAbandoned,
    CapExceeded,
    ConfigurationError,
    NotFound,
    RateLimited,
    ReplicateError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from ._files import MAX_UPLOAD_BYTES, FileSource
from ._helpers import TERMINAL_STATUSES
from ._limiter import InFlightAware, Limiter, NullLimiter, SpendAware, ThrottleAware
from ._provider import CallOutcome, FunctionSpec, ReplicateProvider
from ._retry import NO_RETRY, RetryPolicy, RetryRecord
from ._version import __version__
from ._webhooks import verify_webhook

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_UPLOAD_BYTES",
    "NO_RETRY",
    "TERMINAL_STATUSES",
    "APIError",
    "Account",
    "ArgumentError",
    "CallAbandoned",
    "CallOutcome",
    "CapExceeded",
    "Catalog",
    "ConfigurationError",
    "FileSource",
    "FunctionSpec",
    "InFlightAware",
    "Limiter",
    "NotFound",
    "NullLimiter",
    "Operation",
    "Parameter",
    "RateLimited",
    "ReplicateClient",
    "ReplicateError",
    "ReplicateProvider",
    "RequestBody",
    "Response",
    "RetryPolicy",
    "RetryRecord",
    "SpendAware",
    "ThrottleAware",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
    "abandon_when",
    "accounts_from_env",
    "load_catalog",
    "new_http_client",
    "simulated_accounts",
    "verify_webhook",
]
