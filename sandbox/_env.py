"""A fresh Lua runtime with the sandbox installed.

One ``lupa.lua54.LuaRuntime`` per run: no ``python.eval``/``python.builtins``, the
``python`` global removed, Lua strings kept as bytes (``encoding=None``), memory capped,
and attribute/item access on any Python object denied. Then the host chunks run on the real
globals (``lua/core.lua``: limits, bridge, coroutines; ``lua/library.lua`` and
``lua/patterns.lua``: table and string functions that cannot loop unseen in C;
``lua/json.lua``: the JSON encoder; ``lua/env.lua``: the script's environment; the middle
three are instrumented like scripts, so their loops run under the script's limits) and everything the host needs stays in their
locals. Nothing survives a run: the next job gets a new runtime.

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

from ._convert import Converter, lua_size
from ._errors import LIMITS, LimitExceeded
from ._host import host_function
from ._instrument import HOST_PROLOGUE, InstrumentError, instrument
from ._limits import Limits, MiB
from ._lupa import lua54
from ._memory import Memory

HOST_CHUNK_NAME = "[sandbox]"
_SETUP_ALLOWANCE = 8 * MiB  # memory for the sandbox itself, on top of the script's limit
_LUA_DIR = Path(__file__).parent / "lua"

# Tick slices (see core.lua): instructions handed out per clock reading.
SLICE_START = 256
SLICE_MIN = 1
SLICE_MAX = 50_000
SLICE_TARGET = 0.005  # seconds of work between two clock readings, at most (about)


@functools.cache
def _lua_chunk(name: str, instrumented: bool = False) -> bytes:
    """``lua/<name>`` compiled once per process, without debug information (host frames
    then give no positions in messages). Parsing it for every run would take half of a
    trivial run's time. Only the host ever loads these."""
    source = (_LUA_DIR / name).read_bytes()
    if instrumented:
        source = instrument(source, HOST_PROLOGUE)
    compiler = lua54.LuaRuntime(encoding=None, register_eval=False)
    return compiler.execute(
        b"local f = assert(load(...)) return string.dump(f, true)",
        source,
        f"={HOST_CHUNK_NAME}".encode(),
        b"t",
    )


@functools.cache
def _char_classes() -> dict[int, bytes]:
    """For each class letter of Lua patterns (``%a``, ``%d``, ...): 256 bytes, ``1`` where the
    C matcher puts the character in the class (patterns.lua uses them to agree with C)."""
    lua = lua54.LuaRuntime(encoding=None, register_eval=False)
    test = lua.eval("function(c, p) return string.find(string.char(c), p) ~= nil end")
    return {
        ord(letter): bytes(49 if test(c, f"^%{letter}".encode()) else 48 for c in range(256)) for letter in "acdglpsuwx"
    }


def _deny_getattr(obj: Any, name: Any) -> None:
    return None


def _deny_setattr(obj: Any, name: Any, value: Any) -> None:
    return None


# The functions of core.lua's `control` table (see there).
CONTROL = (
    "load_main",
    "resume",
    "reset_count",
    "limit_state",
    "traceback",
    "error_info",
    "walk",
    "charge_host",
    "mark",
    "new_error",
    "null",
    "type",
)


@dataclass
class Sandbox:
    """A runtime ready to load a script; ``control`` holds core.lua's functions for the
    driver, ``memory`` its memory limit and ``setup_memory`` what the sandbox itself
    allocated."""

    lua: Any
    control: dict[str, Any]
    converter: Converter
    memory: Memory
    setup_memory: int = 0


def create_sandbox(
    limits: Limits,
    *,
    clock: Callable[[], float | bool | None],
    deadline: float,
    callbacks: Callable[[Sandbox], Mapping[str, Callable[..., tuple[Any, ...]]]],
    on_abort: Callable[[BaseException], None],
    job_id: str | None,
    job_args: Mapping[str, Any] | None,
) -> Sandbox:
    """Build the runtime. ``callbacks(sandbox)`` gives the Python halves of the libraries
    (each wrapped here so it never raises into Lua); ``clock`` must not raise (it returns
    None instead, which aborts the run, or False to stop it as cancelled). Raises ``LimitExceeded("memory")`` when the job's
    args do not fit in its memory limit."""
    args = dict(job_args or {})
    args_size = lua_size(args)
    if args_size > limits.memory_bytes:
        raise LimitExceeded("memory")
    setup_limit = limits.memory_bytes + _SETUP_ALLOWANCE + args_size
    lua = lua54.LuaRuntime(
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=True,
        encoding=None,
        max_memory=setup_limit,
        attribute_handlers=(_deny_getattr, _deny_setattr),
    )
    lua.globals()[b"python"] = None
    memory = Memory(lua, setup_limit)

    # Called from Lua around every callback (never raise: an exception would reach the script).
    def enter() -> None:
        try:
            memory.enter()
        except BaseException as exc:
            on_abort(exc)

    def leave() -> None:
        try:
            memory.leave()
        except BaseException as exc:
            on_abort(exc)

    messages = {kind.encode(): limits.describe(kind).encode() for kind in LIMITS}
    messages[b"aborted"] = b"run aborted by the host"
    messages[b"cancelled"] = b"the job was cancelled"
    host = lua.table_from({b"clock": clock, b"enter": enter, b"leave": leave})
    config = lua.table_from(
        {
            b"deadline": float(deadline),
            b"instructions": int(limits.instructions),
            b"memory_bytes": int(limits.memory_bytes),
            b"slice_start": SLICE_START,
            b"slice_min": SLICE_MIN,
            b"slice_max": SLICE_MAX,
            b"slice_target": SLICE_TARGET,
            b"messages": lua.table_from(messages),
        }
    )
    core, control_table = lua.execute(_lua_chunk("core.lua"), host, config, mode="b")
    control = {name: control_table[name.encode()] for name in CONTROL}
    converter = Converter(lua.table, control["walk"], control["mark"], control["null"], control["type"])
    sandbox = Sandbox(lua, control, converter, memory)

    def instrument_script(source: bytes) -> tuple[Any, ...]:
        try:
            text = instrument(source)
        except InstrumentError as exc:
            return (False, exc.line)
        return (text,)

    for name, fn in {**callbacks(sandbox), "instrument": instrument_script}.items():
        host[name.encode()] = host_function(fn, on_abort, memory)
    deps = lua.table_from(
        {b"charge": core[b"charge"], b"c_result": core[b"c_result"], b"classes": lua.table_from(_char_classes())}
    )
    deps[b"host_find"] = core[b"wrap_host"](host[b"find_plain"], 2)
    deps[b"real"] = lua.eval("string")
    deps[b"NULL"], deps[b"OBJECT_MT"], deps[b"ARRAY_MT"] = core[b"NULL"], core[b"OBJECT_MT"], core[b"ARRAY_MT"]
    deps[b"trip"] = core[b"trip"]
    deps[b"fix_utf8"] = core[b"wrap_host"](host[b"fix_utf8"], 1)
    deps[b"base64"] = core[b"wrap_host"](host[b"base64"], 1)
    tick = core[b"tick"]
    library = lua.execute(_lua_chunk("library.lua", instrumented=True), tick, deps, mode="b")
    patterns = lua.execute(_lua_chunk("patterns.lua", instrumented=True), tick, deps, mode="b")
    json_lib = lua.execute(_lua_chunk("json.lua", instrumented=True), tick, deps, mode="b")
    config[b"job_id"] = job_id.encode() if job_id is not None else None
    config[b"job_args"] = converter.to_lua(args)
    config[b"result_bytes"] = int(limits.result_bytes)
    lua.execute(_lua_chunk("env.lua"), core, host, config, library, patterns, json_lib, mode="b")
    control["reset_count"]()
    sandbox.setup_memory = lua.get_memory_used()
    memory.limit = limits.memory_bytes + sandbox.setup_memory
    config[b"memory_total"] = memory.limit + lua.get_memory_used(total=True) - lua.get_memory_used()
    converter.memory = memory
    memory.enter()  # the host runs until the script is resumed
    return sandbox
