"""A fresh Lua runtime with the sandbox installed.

One ``lupa.lua54.LuaRuntime`` per run: no ``python.eval``/``python.builtins``, the
``python`` global removed, Lua strings kept as bytes (``encoding=None``), memory capped,
and attribute/item access on any Python object denied. Then two host chunks run on the real
globals (``lua/core.lua``: limits, bridge, coroutines; ``lua/env.lua``: the script's
environment) and everything the host needs stays in their locals.

Scripts see (``lua/env.lua``): ``assert error ipairs next pairs pcall select tonumber
tostring type xpcall rawequal rawget rawset rawlen setmetatable getmetatable unpack``,
``string`` (no ``dump``), ``table``, ``math``, ``utf8``, ``coroutine`` (wrapped), ``os``
(``time``, ``clock``, ``date``), ``load`` (text chunks only), ``collectgarbage`` (``"count"``
only), ``print``, ``dump``, ``sleep``, ``json``, ``regex``, ``docs``, ``lua_read_doc``,
``app.integrations`` and ``job``. Not there: ``io``, ``require``, ``package``, ``dofile``,
``loadfile``, ``debug``, ``string.dump``, ``python``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._convert import Converter
from ._host import host_function
from ._limits import LIMIT_ERROR_TYPES, Limits, MiB
from ._lupa import lua54

HOST_CHUNK_NAME = "[sandbox]"
HOOK_PERIOD = 1000  # instructions between two runs of the count hook
_SETUP_ALLOWANCE = 8 * MiB  # memory for the sandbox itself, on top of the script's limit
_LUA_DIR = Path(__file__).parent / "lua"


@functools.cache
def _lua_chunk(name: str) -> bytes:
    """``lua/<name>`` compiled once per process (as a binary chunk: parsing it for every
    run would take half of a trivial run's time). Only the host ever loads these."""
    source = (_LUA_DIR / name).read_bytes()
    compiler = lua54.LuaRuntime(encoding=None, register_eval=False)
    return compiler.execute(
        b"local f = assert(load(...)) return string.dump(f)",
        source,
        f"={HOST_CHUNK_NAME}".encode(),
        b"t",
    )


def _deny_getattr(obj: Any, name: Any) -> None:
    return None


def _deny_setattr(obj: Any, name: Any, value: Any) -> None:
    return None


# The functions of core.lua's `control` table (see there).
CONTROL = (
    "load_main",
    "resume",
    "limit_state",
    "traceback",
    "error_info",
    "table_info",
    "mark",
    "new_error",
    "null",
    "type",
)


@dataclass
class Sandbox:
    """A runtime ready to load a script; ``control`` holds core.lua's functions for the
    driver and ``setup_memory`` what the sandbox itself allocated."""

    lua: Any
    control: dict[str, Any]
    converter: Converter
    setup_memory: int = 0


def create_sandbox(
    limits: Limits,
    *,
    clock: Callable[[], float | None],
    deadline: float,
    callbacks: Callable[[Sandbox], Mapping[str, Callable[..., tuple[Any, ...]]]],
    on_abort: Callable[[BaseException], None],
    job_id: str | None,
    job_args: Mapping[str, Any] | None,
) -> Sandbox:
    """Build the runtime. ``callbacks(sandbox)`` gives the Python halves of the libraries
    (each wrapped here so it never raises into Lua); ``clock`` must not raise (it returns
    None instead, which aborts the run)."""
    lua = lua54.LuaRuntime(
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=True,
        encoding=None,
        max_memory=limits.memory_bytes + _SETUP_ALLOWANCE,
        attribute_handlers=(_deny_getattr, _deny_setattr),
    )
    lua.globals()[b"python"] = None

    messages = {kind.encode(): limits.describe(kind).encode() for kind in LIMIT_ERROR_TYPES}
    messages[b"aborted"] = b"run aborted by the host"
    host = lua.table_from({b"clock": clock})
    config = lua.table_from(
        {
            b"deadline": float(deadline),
            b"instructions": int(limits.instructions),
            b"period": HOOK_PERIOD,
            b"messages": lua.table_from(messages),
        }
    )
    core, control_table = lua.execute(_lua_chunk("core.lua"), host, config, mode="b")
    control = {name: control_table[name.encode()] for name in CONTROL}
    converter = Converter(lua.table, control["table_info"], control["mark"], control["null"], control["type"])
    sandbox = Sandbox(lua, control, converter)
    for name, fn in callbacks(sandbox).items():
        host[name.encode()] = host_function(fn, on_abort)
    config[b"job_id"] = job_id.encode() if job_id is not None else None
    config[b"job_args"] = converter.to_lua(dict(job_args or {}))
    lua.execute(_lua_chunk("env.lua"), core, host, config, mode="b")
    sandbox.setup_memory = lua.get_memory_used()
    lua.set_max_memory(limits.memory_bytes + sandbox.setup_memory)
    return sandbox
