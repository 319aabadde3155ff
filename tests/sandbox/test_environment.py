"""The script's environment: what is there, what is gone, and that no Python is reachable."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "expression",
    [
        "io",
        "require",
        "package",
        "dofile",
        "loadfile",
        "debug",
        "python",
        "string.dump",
        "os.execute",
        "os.getenv",
        "os.exit",
        "os.remove",
        "os.rename",
        "os.tmpname",
        "loadstring",
        "rawget(_G, 'debug')",
        "('').dump",
    ],
)
def test_removed_globals_are_absent(run, expression):
    """Dangerous globals and functions are nil in the sandbox."""
    assert run(f"return {expression}").result == [None]


@pytest.mark.parametrize(
    "name",
    [
        "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring",
        "type", "xpcall", "rawequal", "rawget", "rawset", "rawlen", "setmetatable",
        "getmetatable", "unpack", "load", "collectgarbage", "print", "dump", "sleep",
        "lua_read_doc",
    ],
)  # fmt: skip
def test_allowed_functions_are_present(run, name):
    """The documented base functions are there."""
    assert run(f"return type({name})").result == ["function"]


def test_libraries_are_present(run):
    """string, table, math, utf8, coroutine, os (time/clock/date), json, regex, docs, app, job."""
    envelope = run(
        "return type(string.format), type(table.concat), type(math.floor), type(utf8.char),"
        " type(coroutine.wrap), type(os.time), type(os.clock), type(os.date), type(json.encode),"
        " type(regex.match), type(docs.read), type(app.integrations), type(job), _G == _ENV,"
        " ('%d'):format(5)"
    )
    assert envelope.result == [
        "function", "function", "function", "function", "function", "function", "function",
        "function", "function", "function", "function", "table", "table", True, "5",
    ]  # fmt: skip


def test_load_refuses_binary_chunks(run):
    """load only accepts text chunks, whatever mode is asked for."""
    envelope = run('return load("\\27Lua binary", "x", "b")')
    assert envelope.result == [None, "attempt to load a binary chunk (mode is 't')"]


def test_load_runs_text_chunks_in_the_sandbox(run):
    """Loaded chunks see the sandbox environment by default, or the env given."""
    envelope = run(
        'return load("return io == nil and type(json) == \'table\'")(), load("return x", "c", "t", {x = 5})()'
    )
    assert envelope.result == [True, 5]


def test_collectgarbage_only_counts(run):
    """collectgarbage("count") works; other options do nothing."""
    envelope = run('return collectgarbage("count") > 0, collectgarbage(), collectgarbage("stop")')
    assert envelope.result == [True, 0, 0]


def test_gc_metamethods_are_refused(run):
    """setmetatable refuses __gc (finalizers would run outside every limit)."""
    envelope = run("return pcall(setmetatable, {}, {__gc = function() end})")
    assert envelope.result == [False, "__gc metamethods are not available in the sandbox"]


def test_string_metatable_is_not_reachable(run):
    """getmetatable("") gives a stand-in; changing it does not change the real one."""
    envelope = run(
        """
        local mt = getmetatable("")
        mt.__index = {upper = function() return "hacked" end}
        return ("x"):upper(), string.upper("y")
        """
    )
    assert envelope.result == ["X", "Y"]


def test_top_level_yield_is_an_error(run):
    """coroutine.yield outside a coroutine fails as in plain Lua."""
    envelope = run("coroutine.yield(1)")
    assert envelope.error.message == "script:1: attempt to yield from outside a coroutine"
    assert run("return coroutine.isyieldable(), select(2, coroutine.running())").result == [
        False,
        True,
    ]


NO_PYTHON_WALK = """
local seen, found = {}, {}
local function visit(v, path, depth)
  local t = type(v)
  if t == "userdata" then found[#found + 1] = path return end
  if depth > 12 or (t ~= "table" and t ~= "string" and t ~= "function") or seen[v] then return end
  seen[v] = true
  local mt = getmetatable(v)
  if mt ~= nil then visit(mt, path .. "<mt>", depth + 1) end
  if t == "table" then
    for k, x in next, v do
      visit(k, path .. "<key>", depth + 1)
      visit(x, path .. "." .. tostring(k), depth + 1)
    end
  end
end
visit(_G, "_G", 0)
visit("", "string", 0)
visit(select(2, pcall(app.integrations.replicate.get_prediction, {prediction_id = "x"})), "err", 0)
visit(app.integrations.replicate.list_predictions(), "result", 0)
visit(json.decode('{"a": [1, {"b": null}]}'), "decoded", 0)
visit(regex.match("ab", "(a)(?P<n>b)"), "match", 0)
visit(select(2, pcall(json.decode, "{")), "json error", 0)
return found
"""


def test_no_python_object_is_reachable(run):
    """Walking everything a script can reach finds no userdata (no Python object)."""
    assert run(NO_PYTHON_WALK).result == [[]]


def test_python_exceptions_never_reach_lua(run, provider):
    """A provider exception reaches the script as a plain Lua table, not a Python object."""
    provider.set_result("list_predictions", RuntimeError("boom"))
    envelope = run(
        "local ok, e = pcall(app.integrations.replicate.list_predictions)\nreturn type(e), getmetatable(e), e.type"
    )
    assert envelope.result == ["table", "error", "internal"]


def test_shebang_and_bom_are_ignored(run):
    """A #! first line and a UTF-8 BOM do not break the script or its line numbers."""
    envelope = run("\ufeff#!/usr/bin/env lua\nerror('x')")
    assert envelope.error.message == "script:2: x"


def test_weak_keyed_tables_are_refused(run):
    """Ephemerons make garbage collection quadratic in C; weak values and kv tables are fine."""
    refused = run('return pcall(setmetatable, {}, {__mode = "k"})')
    assert refused.result[0] is False
    assert "weak-keyed tables" in refused.result[1]
    assert run(
        'return (pcall(setmetatable, {}, {__mode = "v"})), (pcall(setmetatable, {}, {__mode = "kv"}))'
    ).result == [
        True,
        True,
    ]


def test_load_reads_function_chunks_and_reports_reader_errors(run):
    """load(function) gathers the pieces; a reader error makes load fail, as in Lua."""
    envelope = run(
        """
        local parts, i = {"return ", "1 + ", "2"}, 0
        local f = load(function() i = i + 1 return parts[i] end)
        local g, err = load(function() error("reader broke") end)
        local h, err2 = load(function() return 42 end)
        return f(), g, err, h, err2
        """
    )
    assert envelope.result[:2] == [3, None]
    assert "reader broke" in envelope.result[2]
    assert envelope.result[3:] == [None, "reader function must return a string"]


def test_limits_cannot_be_caught_once_tripped(run):
    """After a limit, pcall re-raises it: nothing more runs, nothing more is printed."""
    envelope = run(
        'pcall(function() while true do end end) print("after")',
        limits=__import__("sandbox").Limits.DEFAULT.replace(instructions=10_000),
    )
    assert envelope.error.limit == "instructions"
    assert envelope.output == ""


def test_host_chunks_leave_no_positions_in_messages(run):
    """Errors raised through the sandbox's own Lua name the script, never [sandbox]."""
    for source in ("string.rep()", "table.insert(nil, 1)", "json.encode(print)", 'string.find("a", "(")'):
        envelope = run(source)
        assert "[sandbox]" not in envelope.error.message, envelope.error.message
