"""The Lua memory limit, and the host's room above it.

lupa caps Lua's allocator at ``max_memory``. An allocation refused while *Lua* runs is an
ordinary Lua error. An allocation refused while *lupa's C code* runs on the host's behalf is
not: pushing a callback's return value, creating a table from Python or taking a reference to a
Lua object then longjmps through Cython frames that hold the GIL (the process deadlocks at 0%
CPU), or, outside any Lua call, panics and aborts the process.

So the limit has two settings:

- while the script runs: ``limit`` (the sandbox's own setup plus ``Limits.memory_bytes``);
- while the host runs (a Python callback, the driver between two steps): ``limit + MARGIN``.
  Lua switches with :meth:`enter`/:meth:`leave` around every callback (core.lua's
  ``wrap_host`` and ``control.resume``), so lupa's own bookkeeping always has room.

Values the host hands to Lua can be large (a decoded JSON document, a provider's response, a
regex result): before building one, the host calls :meth:`reserve` with an upper bound of its
size. If it would not fit under the script's limit, the call fails with the memory limit
instead; otherwise the lift is raised by that much so that building it cannot fail.
"""

from __future__ import annotations

from typing import Any

from ._errors import LimitExceeded
from ._limits import MiB

MARGIN = 8 * MiB  # room for lupa's bookkeeping while the host runs


class Memory:
    """The memory limit of one runtime (``limit`` is in lupa's ``set_max_memory`` terms)."""

    def __init__(self, lua: Any, limit: int) -> None:
        self._lua = lua
        self.limit = limit

    def enter(self) -> None:
        """The host starts running: lift the limit by the margin."""
        self._lua.set_max_memory(self.limit + MARGIN)

    def leave(self) -> None:
        """The script runs again: back to its limit."""
        self._lua.set_max_memory(self.limit)

    def used(self) -> int:
        return int(self._lua.get_memory_used())

    def headroom(self) -> int:
        """Bytes the script may still allocate."""
        return max(0, self.limit - self.used())

    def reserve(self, nbytes: int) -> None:
        """Make room for the host to build ``nbytes`` of Lua values, or raise the memory limit
        when they would not fit under the script's limit."""
        if nbytes > self.headroom():
            raise LimitExceeded("memory")
        self._lua.set_max_memory(self.limit + MARGIN + nbytes)
