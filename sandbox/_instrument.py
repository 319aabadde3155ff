"""Tick injection: how the instruction limit is enforced (see ENGINE.md for the numbers).

Lua 5.4's count hook makes the VM trap on *every* instruction as soon as any count hook is
set, whatever its period, which made compute-bound scripts 2.5x slower. Instead, every chunk a
script runs is rewritten before it is compiled: a *tick* is added wherever Lua code can run
again without the source getting longer, i.e.

- after ``do`` (the body of ``while``/``for`` loops, and plain blocks),
- after ``repeat``,
- after the parameter list of every ``function`` (recursion, metamethods, callbacks),
- before every ``goto`` whose label appears earlier in the source (a backward jump).

A tick is one statement on the same line (line numbers are unchanged)::

    do local __luaq_k=__luaq_n-W __luaq_n=__luaq_k if __luaq_k<0 then __luaq_n=__luaq_T() end end

(five VM instructions on the common path; ``__luaq_n`` is an upvalue shared by the chunk's
functions).

``W`` approximates the VM instructions of the region it pays for: half the tokens directly
in its body (at least 1), not counting those inside nested ``if`` blocks, which may not run. ``__luaq_T`` (core.lua's ``tick``) charges the next slice of the budget, reads the
clock, and raises the limit error once a limit has tripped (sticky: after a trip every tick
raises again, so ``pcall`` cannot resume a loop). Straight-line code between ticks is
bounded by the length of the source.

A chunk gets a prologue on its first line that binds the tick function and the environment
from the table it was loaded with (``{__luaq_tick=..., __luaq_env=...}``), so scripts reach
neither. Names starting with ``__luaq`` are reserved: a chunk using one is refused.

The scanner follows ``llex.c`` for everything that decides whether a byte is code: comments,
long brackets and short strings (``\\z`` and escaped newlines included); it stops only at
those, at the keywords that open and close blocks, at parentheses and labels, and skips plain
code in bulk (a few MB/s). A chunk is compiled unmodified first, so only valid Lua reaches
:func:`instrument`; the tests check the scanner against Lua itself, byte by byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["RESERVED_PREFIX", "InstrumentError", "instrument", "spans"]

RESERVED_PREFIX = b"__luaq"
SCRIPT_PROLOGUE = b"local __luaq_T,__luaq_n=__luaq_tick,0 local _ENV=__luaq_env "
HOST_PROLOGUE = b"local __luaq_T,__luaq_n=...,0 "
_TICK = b" do local __luaq_k=__luaq_n-%d __luaq_n=__luaq_k if __luaq_k<0 then __luaq_n=__luaq_T() end end "
_MAX_WEIGHT = 100_000

_SHORT_STRING_BODY = rb"(?:[^%(q)s\\\r\n]|\\z[ \t\r\n\f\v]*|\\(?:\r\n|\n\r|[\s\S]))*"
_NOT_NAME_BEFORE = rb"(?<![A-Za-z0-9_])"
_NOT_NAME_AFTER = rb"(?![A-Za-z0-9_])"
# What the scanner stops at; everything between two stops is plain code. Comments and strings
# are matched whole, so nothing inside them is ever seen as code. (Numerals need no rule: in
# valid Lua they never touch a letter, and their letters never spell a keyword.)
_SCAN = re.compile(
    b"|".join(
        [
            rb"(?P<lcomment>--\[(?P<lceq>=*)\[)",
            rb"(?P<comment>--[^\r\n]*)",
            rb"(?P<lstring>\[(?P<lseq>=*)\[)",
            rb'(?P<string>"'
            + (_SHORT_STRING_BODY % {b"q": b'"'})
            + rb'"|\''
            + (_SHORT_STRING_BODY % {b"q": b"'"})
            + rb"')",
            _NOT_NAME_BEFORE + rb"(?P<keyword>do|if|function|repeat|end|until|goto)" + _NOT_NAME_AFTER,
            _NOT_NAME_BEFORE + rb"(?P<reserved>__luaq)",
            rb"(?P<paren>[()])",
            rb"(?P<label>::[ \t\r\n\f\v]*(?P<label_name>[A-Za-z_][A-Za-z0-9_]*)[ \t\r\n\f\v]*::)",
        ]
    )
)
_NAME_AFTER_GOTO = re.compile(rb"[ \t\r\n\f\v]*([A-Za-z_][A-Za-z0-9_]*)")

_OPENERS = {b"do", b"if", b"function", b"repeat"}
_CLOSERS = {b"end", b"until"}
_BYTES_PER_INSTRUCTION = 6  # of source code, roughly (a token and a half, spaces included)


class InstrumentError(Exception):
    """The chunk cannot be instrumented (it uses a reserved name); ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _scan(source: bytes) -> Iterator[tuple[re.Match[bytes], str, int]]:
    """The scanner's stops, in order: each is a regex match whose ``lastgroup`` names it; long
    comments and long strings end at the returned end offset."""
    pos, size = 0, len(source)
    search = _SCAN.search
    while pos < size:
        m = search(source, pos)
        if m is None:
            return
        kind = m.lastgroup or ""
        end = m.end()
        if kind == "lcomment" or kind == "lstring":
            level = m.group("lceq" if kind == "lcomment" else "lseq")
            close = source.find(b"]" + level + b"]", end)
            end = size if close < 0 else close + len(level) + 2
        yield m, kind, end
        pos = end


def spans(source: bytes) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` of the comments and strings of ``source`` (delimiters
    included); everything else is code."""
    out: list[tuple[str, int, int]] = []
    for m, kind, end in _scan(source):
        if kind in ("comment", "lcomment"):
            out.append(("comment", m.start(), end))
        elif kind in ("string", "lstring"):
            out.append(("string", m.start(), end))
    return out


def instrument(source: bytes, prologue: bytes = SCRIPT_PROLOGUE) -> bytes:
    """``source`` with ticks added and ``prologue`` prepended on its first line."""
    inserts: list[tuple[int, int]] = []  # (byte offset, tick id)
    weights: list[int] = []  # per tick: code bytes it pays for (goto ticks: final weight)
    gotos: set[int] = set()
    stack: list[int | None] = []  # per open block: its tick id, or None (an `if`)
    region_open: list[bool] = []  # per open block: whether its tick region has started
    labels: dict[bytes, int] = {}  # label name -> offset of its definition
    pending_function: int | None = None  # tick id of a `function` whose `)` is still ahead
    function_paren = False
    pos = 0
    for m, kind, end in _scan(source):
        start = m.start()
        counted = stack and stack[-1] is not None and region_open[-1]
        if counted and kind not in ("comment", "lcomment"):
            weights[stack[-1]] += end - pos  # code directly in a loop or function body
        elif counted:
            weights[stack[-1]] += start - pos
        pos = end
        if kind == "keyword":
            word = m.group("keyword")
            if word in _OPENERS:
                tick: int | None = None
                if word != b"if":
                    tick = len(weights)
                    weights.append(0)
                    if word == b"function":
                        pending_function, function_paren = tick, False
                    else:
                        inserts.append((end, tick))
                stack.append(tick)
                region_open.append(word in (b"do", b"repeat"))
            elif word in _CLOSERS:
                if stack:
                    stack.pop()
                    region_open.pop()
            else:  # goto: a tick first if the label may be behind (a backward jump)
                target = _NAME_AFTER_GOTO.match(source, end)
                if target is not None and target.group(1) in labels:
                    tick = len(weights)
                    weights.append(max(1, (start - labels[target.group(1)]) // _BYTES_PER_INSTRUCTION))
                    gotos.add(tick)
                    inserts.append((start, tick))
        elif kind == "paren" and pending_function is not None:
            if m.group(0) == b"(":
                function_paren = True
            elif function_paren:
                inserts.append((end, pending_function))
                if stack and stack[-1] == pending_function:
                    region_open[-1] = True
                pending_function = None
        elif kind == "label":
            labels[m.group("label_name")] = start
        elif kind == "reserved":
            line = source.count(b"\n", 0, start) + 1
            raise InstrumentError(f"names starting with {RESERVED_PREFIX.decode()} are reserved", line)
    if stack and stack[-1] is not None and region_open[-1]:
        weights[stack[-1]] += len(source) - pos

    out = bytearray(prologue)
    pos = 0
    for offset, tick in sorted(inserts):
        out += source[pos:offset]
        weight = weights[tick] if tick in gotos else weights[tick] // _BYTES_PER_INSTRUCTION
        out += _TICK % min(_MAX_WEIGHT, max(1, weight))
        pos = offset
    out += source[pos:]
    return bytes(out)
