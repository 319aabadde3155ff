"""luaq's Lua sandbox: run agent-written Lua scripts with limits, against providers.

``run_script(source, providers=..., ...)`` runs one script in a fresh lupa (Lua 5.4)
runtime and returns an :class:`Envelope`. The script's only door to the world is
``app.integrations.<provider>.*``, served by :class:`Provider` implementations
(``api_client.ReplicateProvider``; ``sandbox.testing.StubProvider`` in tests).
"""

from ._driver import run_script
from ._envelope import Envelope
from ._errors import LimitExceeded, PermissionDenied, SandboxError, ScriptError
from ._limits import Limits
from ._provider import CallOutcome, FunctionSpec, Provider

__all__ = [
    "CallOutcome",
    "Envelope",
    "FunctionSpec",
    "LimitExceeded",
    "Limits",
    "PermissionDenied",
    "Provider",
    "SandboxError",
    "ScriptError",
    "run_script",
]
