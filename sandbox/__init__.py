"""luaq's Lua sandbox: run agent-written Lua scripts with limits, against providers.

``run_script(source, providers=..., ...)`` runs one script in a fresh lupa (Lua 5.4)
runtime and returns an :class:`Envelope`. The script's only door to the world is
``app.integrations.<provider>.*``, served by :class:`Provider` implementations
(``api_client.ReplicateProvider``; ``sandbox.testing.StubProvider`` in tests).

Failures carry ``error.type`` in ``syntax``, ``runtime``, ``limit_exceeded`` (with
``error.limit`` in ``instructions``, ``memory``, ``wall_clock``, ``output``, ``calls``,
``result_size``), ``api``, ``permission``, ``validation`` or ``internal`` (``_errors.py``).

Engine choice (measured by ``ops/bench/sandbox.py``; details in ``sandbox/ENGINE.md``): Lua 5.4
with instruction limits enforced by rewriting each chunk with ticks, not by a debug hook. A
count hook makes Lua 5.4 trap on every instruction whatever its period (2.0-2.4x bare 5.4 on
the benchmark workload); ticks cost 1.24x there (1.6-1.9x on tight loops and call-heavy code),
and set-up plus ``return 1`` takes 0.42 ms. LuaJIT would be faster only with its JIT on, where
hooks do not fire, and it is Lua 5.1.
"""

from ._driver import Cancellation, run_script
from ._envelope import Envelope
from ._errors import LimitExceeded, PermissionDenied, SandboxError, ScriptError
from ._limits import Limits
from ._provider import CallOutcome, FunctionSpec, Provider

__all__ = [
    "CallOutcome",
    "Cancellation",
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
