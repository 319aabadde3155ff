"""luaq's Replicate HTTP API client.

The operation catalog (built from the vendored ``openapi.json``), an httpx client that
validates and sends any operation, accounts from the environment, typed errors, and
``ReplicateProvider``, the sandbox's door to Replicate. ``api_client.simulator`` is an
offline Replicate reachable through an httpx transport or over HTTP.

api_client never imports lupa, celery, redis or the sandbox.
"""

from ._accounts import DEFAULT_BASE_URL, Account, accounts_from_env, simulated_accounts
from ._catalog import Catalog, Operation, Parameter, RequestBody, load_catalog
from ._client import ReplicateClient, Response
from ._errors import (
    APIError,
    ArgumentError,
    ConfigurationError,
    NotFound,
    RateLimited,
    ReplicateError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from ._files import MAX_UPLOAD_BYTES, FileSource
from ._limiter import Limiter, NullLimiter
from ._provider import CallOutcome, FunctionSpec, ReplicateProvider
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_UPLOAD_BYTES",
    "APIError",
    "Account",
    "ArgumentError",
    "CallOutcome",
    "Catalog",
    "ConfigurationError",
    "FileSource",
    "FunctionSpec",
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
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
    "accounts_from_env",
    "load_catalog",
    "simulated_accounts",
]
