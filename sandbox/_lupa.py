"""The ``lupa.lua54`` module, imported so that it uses its own Lua.

Every lupa module embeds a whole Lua and exports the ``lua_*`` C symbols. A library that
loads another one with ``RTLD_GLOBAL`` (fakeredis loads ``lupa.lua51`` that way, through
``lupa.allow_lua_module_loading()``) puts Lua 5.1's symbols first in the process's global
scope; a ``lupa.lua54`` loaded afterwards would then call Lua 5.1 functions on Lua 5.4
states and crash at the first ``LuaRuntime()``. Loading it with ``RTLD_DEEPBIND`` (Linux)
makes it bind to its own symbols whatever was loaded before.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType


def _import_lua54() -> ModuleType:
    if "lupa.lua54" not in sys.modules:
        flags = sys.getdlopenflags()
        try:
            sys.setdlopenflags(flags | getattr(os, "RTLD_DEEPBIND", 0))
            from lupa import lua54  # noqa: F401
        finally:
            sys.setdlopenflags(flags)
    return sys.modules["lupa.lua54"]


lua54 = _import_lua54()

__all__ = ["lua54"]
