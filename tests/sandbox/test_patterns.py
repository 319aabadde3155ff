"""string.find/match/gmatch/gsub: the pure-Lua matcher agrees with C, and no call hangs."""

from __future__ import annotations

import random
import time

import pytest

from sandbox._env import _char_classes, _lua_chunk
from sandbox._lupa import lua54

from .conftest import small

HARNESS = b"""
local patterns_chunk, tick, classes = ...
local deps = {
  charge = function() end,
  c_result = nil,
  classes = classes,
  host_find = function(s, p, init) local i = string.find(s, p, init, true) return i end,
  real = string,
}
local M = load(patterns_chunk, "=patterns", "b")(tick, deps)
local pack, unpack = table.pack, table.unpack
local function run(f, ...)
  local r = pack(pcall(f, ...))
  if not r[1] then
    local e = tostring(r[2]):gsub("^[^:]*:%d+: ", "")
    return "error", e
  end
  return "ok", unpack(r, 2, r.n)
end
local function all(iterator)
  local out = {}
  for a, b in iterator do out[#out + 1] = tostring(a) .. "|" .. tostring(b) end
  return table.concat(out, ",")
end
return {
  find = function(s, p, init, plain)
    return { run(string.find, s, p, init, plain) }, { run(M.lua_find, s, p, init or 1) }
  end,
  match = function(s, p, init)
    return { run(string.match, s, p, init) }, { run(M.lua_match, s, p, init or 1) }
  end,
  gsub = function(s, p, r)
    return { run(string.gsub, s, p, r) }, { run(M.lua_gsub, s, p, r) }
  end,
  gmatch = function(s, p)
    return { run(function() return all(string.gmatch(s, p)) end) }, { run(function() return all(M.lua_gmatch(s, p)) end) }
  end,
}
"""


@pytest.fixture(scope="module")
def harness():
    lua = lua54.LuaRuntime(encoding=None)
    tick = lua.eval("function() return 1000000 end")
    return lua.execute(HARNESS, _lua_chunk("patterns.lua", instrumented=True), tick, lua.table_from(_char_classes()))


def _same(pair) -> tuple[list, list]:
    c, port = pair
    return list(c.values()), list(port.values())


FRAGMENTS = [
    "a", "b", ".", "%a", "%d", "%s", "%w", "%A", "%%", "%.", "[ab]", "[^a]", "[a-c]", "[%a%d]", "[]]", "[^]]",
    "*", "+", "-", "?", "(", ")", "()", "%b()", "%f[%a]", "%f[%A]", "%1", "^", "$", "x", " ", "[", "%",
]  # fmt: skip
SUBJECT_CHARS = "aab b(c)1 2x%]"


@pytest.mark.parametrize("seed", range(8))
def test_lua_matcher_agrees_with_c_on_random_patterns(harness, seed):
    """For random patterns and subjects, the port returns what C returns (or fails as C does)."""
    rng = random.Random(seed)
    for _ in range(400):
        pattern = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 6))).encode()
        subject = "".join(rng.choice(SUBJECT_CHARS) for _ in range(rng.randint(0, 12))).encode()
        for name in ("find", "match", "gmatch"):
            c, port = _same(harness[name.encode()](subject, pattern))
            assert c == port, (name, subject, pattern)
        for repl in (b"<%0>", b"%1", b"x", b"%%"):
            c, port = _same(harness[b"gsub"](subject, pattern, repl))
            assert c == port, ("gsub", subject, pattern, repl)


@pytest.mark.parametrize(
    ("subject", "pattern"),
    [
        (b"hello world", b"(o)(r)"),
        (b"key = value", b"^(%w+)%s*=%s*(%w+)$"),
        (b"THE (quick) fox", b"%f[%a]%a+"),
        (b"f(a(b)c)d", b"%b()"),
        (b"aaa", b"a-"),
        (b"abcabc", b"(abc)%1"),
        (b"  trim  ", b"^%s*(.-)%s*$"),
        (b"", b"^$"),
        (b"x", b"()"),
    ],
)
def test_lua_matcher_agrees_with_c_on_usual_patterns(harness, subject, pattern):
    """Captures, anchors, frontiers, balances and back-references work as in C."""
    for name in ("find", "match", "gmatch"):
        c, port = _same(harness[name.encode()](subject, pattern))
        assert c == port


def test_gsub_with_functions_and_tables(run):
    """gsub takes a function or a table, on both paths (C for cheap patterns, Lua otherwise)."""
    envelope = run(
        """
        local long = string.rep("ab ", 4000)
        local a = ("a b c"):gsub("%w", {a = "1", b = false})
        local b = ("a b c"):gsub("(%w)", function(x) return x:upper() end)
        local c = select(2, long:gsub("(%w+)%s*(%w*)", function(x) return "" end))
        return a, b, c
        """
    )
    assert envelope.result == ["1 b c", "A B C", 2000]


@pytest.mark.parametrize(
    "source",
    [
        'return string.find(string.rep("a", 100000), "a*b")',
        'return string.find(string.rep("a", 30000), ".-.-.-.-.-b")',
        'return string.match(string.rep("a", 50000), "(a*)*b")',
        'local n = 0 for _ in string.gmatch(string.rep("a", 50000), "a*a*b") do n = n + 1 end return n',
        'return (string.gsub(string.rep("a", 50000), "a-a-a-b", "x"))',
        'return ("a"):rep(60000):find(("a"):rep(30000) .. "b")',
        'return string.find(string.rep("(", 40000), "%b()x")',
    ],
)
def test_pathological_patterns_end_within_the_limits(run, source):
    """Backtracking patterns run in the instrumented matcher: they end at the instruction
    limit within a second instead of running for minutes in C."""
    started = time.monotonic()
    envelope = run(source, limits=small(instructions=5_000_000))
    assert time.monotonic() - started < 5
    assert envelope.status in ("succeeded", "limit_exceeded")
    if envelope.status == "limit_exceeded":
        assert envelope.error.limit == "instructions"


def test_long_plain_needle_uses_a_linear_search(run):
    """A plain find of a long needle in a long subject (quadratic in C) answers at once."""
    envelope = run(
        'local s = string.rep("a", 2000000) .. "b" return s:find(string.rep("a", 100000) .. "b", 1, true)',
    )
    assert envelope.result == [1900001, 2000001]


def test_pattern_errors_name_the_script_line(run):
    """A malformed pattern fails at the script's call, on either path."""
    short = run('local x = 1\nlocal y = string.find("abc", "[a")')
    assert short.error.message == "script:2: malformed pattern (missing ']')"
    long = run('local s = string.rep("a", 5000)\nlocal y = s:find("a*a*[a")')
    assert long.error.message == "script:2: malformed pattern (missing ']')"
    replacement = run('local x = 1\nlocal y = string.gsub("x", "x", "%2")')
    assert replacement.error.message == "script:2: invalid capture index %2"


def test_string_methods_go_through_the_guarded_functions(run):
    """("..."):find uses the same functions as string.find."""
    envelope = run('return ("x"):rep(3), string.find == ("").find, ("hello"):find("l+")')
    assert envelope.result == ["xxx", True, 3, 4]
