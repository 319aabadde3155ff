"""Tick injection: the lexer sees code exactly where Lua does, and every loop is ticked."""

from __future__ import annotations

import random
import re

import pytest

from sandbox._instrument import InstrumentError, instrument, spans
from sandbox._lupa import lua54

from .conftest import small

TRICKY = [
    b'local s = "a\\"b" while false do end',
    b"local s = 'it\\'s' -- comment do\nlocal t = [[ do ]] for i = 1, 2 do end",
    b"local s = [==[ ]] ]=] do ]==] repeat until true",
    b"--[==[ long\ncomment ]] do ]==] local x = 1",
    b"--[= not long\nlocal x = 1",
    b"-- [[ not long either\nlocal y = 2 --]]",
    b'local s = "a\\z\n   b" local f = function(a, ...) return a end',
    b'local s = "line\\\ncontinued" goto skip ::skip::',
    b"local s = '\\x41\\u{42}\\67\\'' do end",
    b"local n = 0x1e-1 + 1e-5 + 0x1p-2 + .5 + 3. local m = 1 .. 2",
    b"x = 0x1e--[[ do ]] + 1",
    b"local t = {[ [[k]] ] = 1, [ [=[v]=] ] = 2} t[1] = t[ [[k]] ]",
    b"::top:: do goto done end goto top ::done::",
    b"local a = a--[==[x]==]do end",
    b'local s = "\\\\" local t = "\\\\\\"" while nil do end',
    b"return function(...) local a <const> = 1 local b <close> = nil return ... end",
]


def _escape_ranges(source: bytes, start: int, end: int) -> set[int]:
    """Positions inside escape sequences of the short string source[start:end]."""
    inside: set[int] = set()
    i = start + 1
    while i < end - 1:
        if source[i : i + 1] != b"\\":
            i += 1
            continue
        j = i + 2
        nxt = source[i + 1 : i + 2]
        if nxt == b"x":
            j = i + 4
        elif nxt == b"u":
            j = source.index(b"}", i) + 1
        elif nxt.isdigit():
            while j < end - 1 and j < i + 4 and source[j : j + 1].isdigit():
                j += 1
        elif nxt == b"z":
            while j < end - 1 and source[j : j + 1] in b" \t\r\n\f\v":
                j += 1
        inside.update(range(i + 1, j))
        i = j
    return inside


def _classify(source: bytes) -> tuple[list[int], list[int]]:
    """Byte positions the scanner puts inside string or comment contents (delimiters and escape
    sequences excluded: inserting a stray character there must keep the chunk valid), and
    positions it considers code (a stray character there must break it)."""
    inside: list[int] = []
    not_code: set[int] = set()
    for kind, start, end in spans(source):
        not_code.update(range(start, end + 1))
        if kind == "comment":
            long = re.match(rb"--\[=*\[", source[start:end])
            opener = len(long.group(0)) if long else 2
            closer = opener - 2 if long else 0
            inside.extend(range(start + opener, end - closer))
        elif source[start : start + 1] == b"[":
            opener = source.index(b"[", start + 1) + 1 - start
            inside.extend(range(start + opener, end - opener))
        else:
            escapes = _escape_ranges(source, start, end)
            inside.extend(p for p in range(start + 1, end) if p not in escapes)
    code = [p for p in range(1, len(source)) if p not in not_code]
    return inside, code


def _positions_outside_code(source: bytes) -> list[int]:
    return _classify(source)[0]


@pytest.fixture(scope="module")
def compiles():
    lua = lua54.LuaRuntime(encoding=None)
    check = lua.eval("function(s) return load(s, '=x', 't') ~= nil end")
    return lambda source: bool(check(source))


@pytest.mark.parametrize("source", TRICKY)
def test_lexer_agrees_with_lua_about_what_is_code(compiles, source):
    """Where the lexer sees string or comment contents, Lua does too (a stray `@` there keeps
    the chunk valid); where it sees code, a stray `@` breaks it."""
    assert compiles(source)
    inside, code = _classify(source)
    for position in inside:
        assert compiles(source[:position] + b"@" + source[position:]), (source, position)
    for position in code:
        assert not compiles(source[:position] + b"@" + source[position:]), (source, position)


def _random_source(rng: random.Random) -> bytes:
    pieces = [
        b'"\\""', b"'\\\\'", b'"\\z\n  "', b"[[x]]", b"[=[]]]=]", b"--x\n", b"--[[x\n]]", b"--[==[]]]==]",
        b"0x1e", b"1e-2", b".5", b"a", b"..", b"...", b"(", b")", b"{", b"}", b",", b"=", b";",
        b"do", b"end", b"while", b"repeat", b"until", b"function", b"goto", b"::", b" ", b"\n",
    ]  # fmt: skip
    return b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 24)))


@pytest.mark.parametrize("seed", range(4))
def test_lexer_agrees_with_lua_on_random_valid_chunks(compiles, seed):
    """Random token soups that happen to be valid Lua: same property as above."""
    rng = random.Random(seed)
    checked = 0
    while checked < 150:
        source = b"local a, f = 1, print " + _random_source(rng)
        if not compiles(source):
            continue
        checked += 1
        inside, code = _classify(source)
        for position in inside:
            assert compiles(source[:position] + b"@" + source[position:]), (source, position)
        for position in code:
            assert not compiles(source[:position] + b"@" + source[position:]), (source, position)


@pytest.mark.parametrize("source", TRICKY)
def test_instrumented_chunks_still_compile_with_the_same_lines(compiles, source):
    """The rewrite keeps the chunk valid and on the same lines."""
    text = instrument(source)
    assert compiles(text)
    assert text.count(b"\n") == source.count(b"\n")


@pytest.mark.parametrize(
    "loop",
    [
        "while true do end",
        "repeat until false",
        "for i = 1, math.huge do end",
        "for k in function() return 1 end do end",
        "::a:: goto a",
        "local function f() return f() end f()",
        "local function f(n) f(n) f(n) end f(1)",
        "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) local x = t.x",
        "local s = [[ ]] --[==[ ]==] while true do end",
        'local s = "\\z\n" while true do end',
    ],
)
def test_every_kind_of_loop_ends_at_the_instruction_limit(run, loop):
    """Loops, backward gotos and recursion are ticked, whatever surrounds them."""
    envelope = run(loop, limits=small(instructions=200_000))
    assert envelope.status in ("limit_exceeded", "failed")
    if envelope.status == "failed":  # unbounded recursion may hit the C stack first
        assert "stack overflow" in envelope.error.message
    else:
        assert envelope.error.limit == "instructions"


def test_reserved_names_are_refused(run):
    """Scripts cannot name the tick's variables."""
    envelope = run("local x = 1\nlocal __luaq_n = 0")
    assert envelope.status == "failed"
    assert envelope.error.type == "syntax"
    assert envelope.error.message == "script:2: names starting with __luaq are reserved"
    loaded = run('return load("__luaq_T = nil")')
    assert loaded.result == [None, '[string "__luaq_T = nil"]:1: names starting with __luaq are reserved']


def test_instrument_raises_on_reserved_names():
    """The rewriter itself refuses them, with the line."""
    with pytest.raises(InstrumentError) as caught:
        instrument(b"\n\n__luaq_x = 1")
    assert caught.value.line == 3


def test_syntax_errors_name_the_script_not_the_rewrite(run):
    """A syntax error is reported against the script as written."""
    envelope = run("for i = 1, 2 do\nprint(i)")
    assert envelope.error.type == "syntax"
    assert envelope.error.message == "script:2: 'end' expected (to close 'for' at line 1) near <eof>"
    assert "__luaq" not in envelope.error.message
