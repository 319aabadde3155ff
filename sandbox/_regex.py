"""``regex.match``, ``match_all``, ``gsub`` and ``split``: Python ``re`` syntax on RE2.

RE2 (``google-re2``) matches in linear time, so no pattern can hang a worker; in exchange
backreferences and lookaround are not available (using them is a catchable error naming the
problem). Patterns may be wrapped in ``/.../flags`` delimiters (flags ``i m s x``), as the
reference runner's PHP patterns were. Subjects are Lua strings (bytes) and offsets are bytes;
a pattern that is not UTF-8 matches bytewise (Latin-1).

- ``regex.match(s, p)`` -> nil or ``{[1] = whole match, [2..] = groups, name = group}``
  (a group that did not take part is ``""``);
- ``regex.match_all(s, p)`` -> a list of such tables;
- ``regex.gsub(s, p, repl[, count])`` -> string; ``repl`` uses ``\\1`` and ``\\g<name>`` (or is
  a Lua function of the match table, run in env.lua); ``count`` nil or 0 replaces all;
- ``regex.split(s, p[, maxsplit])`` -> list of strings (groups included, as in Python).

Results are bounded by the memory the script has left: matches are counted (and the output of
``gsub`` measured) while they are produced, and the call fails with the memory limit as soon
as the result could not fit, before it is built in Lua. Every ``_WORK_EVERY`` matches the
host's work is charged to the instruction budget (``MATCH_COST`` each) and the wall clock is
checked.

:func:`find_plain` is the linear-time plain search behind ``string.find`` for long patterns
(patterns.lua).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import re2

from ._errors import LimitExceeded
from ._host import ScriptFacingError
from ._memory import Memory

_DELIMITED = re.compile(rb"\A/(.*)/([imsxu]*)\Z", re.S)
_CACHE_SIZE = 128
_WORK_EVERY = 1024  # matches between two reports of the host's work
MATCH_COST = 256  # instructions charged per match (about its time in Python)
_TABLE = 160  # estimated Lua bytes of a table (plus a slot per entry below)
_SLOT = 96
_STRING = 48

# A part of a parsed replacement template: literal bytes, or a group number or name.
_Part = bytes | int


def _options(latin1: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    if latin1:
        options.encoding = re2.Options.Encoding.LATIN1
    return options


_UTF8 = _options(latin1=False)
_LATIN1 = _options(latin1=True)


class Regexes:
    """The regex library of one run (with a small cache of compiled patterns)."""

    def __init__(
        self,
        new_table: Callable[[], Any],
        memory: Callable[[], Memory | None],
        work: Callable[[int], None] | None = None,
    ) -> None:
        self._new_table = new_table
        self._memory = memory
        self._work = work
        self._cache: dict[bytes, Any] = {}

    def _finditer(self, compiled: Any, subject: bytes) -> Any:
        """``compiled.finditer(subject)``, reporting the work every ``_WORK_EVERY`` matches."""
        for count, m in enumerate(compiled.finditer(subject), 1):
            if self._work is not None and count % _WORK_EVERY == 0:
                self._work(_WORK_EVERY * MATCH_COST)
            yield m

    def compile(self, pattern: bytes, fname: str) -> Any:
        compiled = self._cache.get(pattern)
        if compiled is None:
            compiled = _compile(pattern, fname)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[pattern] = compiled
        return compiled

    def _room(self) -> int:
        memory = self._memory()
        return memory.headroom() if memory is not None else 2**62

    def _reserve(self, size: int) -> None:
        memory = self._memory()
        if memory is not None:
            memory.reserve(size)

    def _matches(self, compiled: Any, subject: bytes, limit: int, extra: int = 0) -> tuple[list[Any], int]:
        """Up to ``limit`` matches (0: all) and the Lua memory their tables need."""
        room = self._room()
        matches: list[Any] = []
        size = _TABLE
        for m in self._finditer(compiled, subject):
            if limit and len(matches) >= limit:
                break
            size += _match_size(m) + extra
            if size > room:
                raise LimitExceeded("memory")
            matches.append(m)
        return matches, size

    def _match_table(self, m: Any) -> Any:
        table = self._new_table()
        table[1] = m.group(0)
        for index, group in enumerate(m.groups(), 2):
            table[index] = b"" if group is None else group
        for name, index in m.re.groupindex.items():
            group = m.group(index)
            table[name if isinstance(name, bytes) else name.encode()] = b"" if group is None else group
        return table

    def callbacks(self) -> dict[str, Callable[..., tuple[Any, ...]]]:
        def regex_match(subject: bytes, pattern: bytes) -> tuple[Any]:
            m = self.compile(pattern, "regex.match").search(subject)
            if m is None:
                return (None,)
            self._reserve(_match_size(m))
            return (self._match_table(m),)

        def regex_match_all(subject: bytes, pattern: bytes) -> tuple[Any]:
            matches, size = self._matches(self.compile(pattern, "regex.match_all"), subject, 0)
            self._reserve(size)
            table = self._new_table()
            for index, m in enumerate(matches, 1):
                table[index] = self._match_table(m)
            return (table,)

        def regex_gsub(subject: bytes, pattern: bytes, repl: bytes, count: Any) -> tuple[bytes]:
            compiled = self.compile(pattern, "regex.gsub")
            limit = _count(count, "regex.gsub", "count")
            template = _parse_template(repl, compiled)
            room = self._room()
            out: list[bytes] = []
            size = 0
            pos = 0
            for done, m in enumerate(self._finditer(compiled, subject)):
                if limit and done >= limit:
                    break
                piece = _expand(template, m)
                size += m.start() - pos + len(piece)
                if size > room:
                    raise LimitExceeded("memory")
                out.append(subject[pos : m.start()])
                out.append(piece)
                pos = m.end()
            out.append(subject[pos:])
            return (b"".join(out),)

        def regex_spans(subject: bytes, pattern: bytes, count: Any) -> tuple[Any]:
            compiled = self.compile(pattern, "regex.gsub")
            limit = _count(count, "regex.gsub", "count")
            matches, size = self._matches(compiled, subject, limit, extra=_TABLE + 3 * _SLOT)
            self._reserve(size)
            spans = self._new_table()
            for n, m in enumerate(matches, 1):
                span = self._new_table()
                span[1] = m.start() + 1
                span[2] = m.end()
                span[3] = self._match_table(m)
                spans[n] = span
            spans[b"n"] = len(matches)
            return (spans,)

        def regex_split(subject: bytes, pattern: bytes, maxsplit: Any) -> tuple[Any]:
            compiled = self.compile(pattern, "regex.split")
            limit = _count(maxsplit, "regex.split", "maxsplit")
            room = self._room()
            # Every part is a slice of the subject, plus one table slot and string header.
            parts_estimate = len(subject) + _TABLE
            for count, _ in enumerate(self._finditer(compiled, subject), 1):
                if limit and count > limit:
                    break
                parts_estimate += (_SLOT + _STRING) * (2 + compiled.groups)
                if parts_estimate > room:
                    raise LimitExceeded("memory")
            parts = compiled.split(subject, limit)
            self._reserve(parts_estimate)
            table = self._new_table()
            for index, part in enumerate(parts, 1):
                table[index] = b"" if part is None else part
            return (table,)

        return {
            "regex_match": regex_match,
            "regex_match_all": regex_match_all,
            "regex_gsub": regex_gsub,
            "regex_spans": regex_spans,
            "regex_split": regex_split,
            "find_plain": find_plain,
        }


def find_plain(subject: bytes, pattern: bytes, init: int) -> tuple[int | None]:
    """The 1-based position of ``pattern`` in ``subject`` from ``init`` (1-based), or None.
    ``bytes.find`` runs in linear time for long patterns (two-way search)."""
    at = subject.find(pattern, max(0, int(init) - 1))
    return (None if at < 0 else at + 1,)


def _match_size(m: Any) -> int:
    """Lua bytes of ``_match_table(m)``: a table with the match, its groups and named groups."""
    strings = [m.group(0), *m.groups(), *(m.group(i) for i in m.re.groupindex.values())]
    return _TABLE + sum(_SLOT + _STRING + (len(g) if g else 0) for g in strings)


def _count(value: Any, fname: str, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ScriptFacingError(f"{fname}: {name} must be a non-negative integer")
    return value


def _compile(pattern: bytes, fname: str) -> Any:
    body, flags = pattern, b""
    delimited = _DELIMITED.match(pattern)
    if delimited and len(pattern) >= 2:
        body, flags = delimited.group(1), delimited.group(2)
    if b"x" in flags:
        body = _strip_verbose(body)
    body = _python_to_re2(body)
    inline = bytes(sorted(set(flags) & set(b"ims")))
    if inline:
        body = b"(?" + inline + b")" + body
    try:
        body.decode("utf-8")
        options = _UTF8
    except UnicodeDecodeError:
        options = _LATIN1
    try:
        return re2.compile(body, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        shown = pattern.decode("utf-8", "replace")
        raise ScriptFacingError(
            f"{fname}: invalid or unsupported pattern {shown!r}: {reason} (RE2 syntax: no backreferences or lookaround)"
        ) from None


def _python_to_re2(body: bytes) -> bytes:
    """Rewrite the Python spellings RE2 lacks: ``\\Z`` (end of text) is ``\\z`` in RE2."""
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i : i + 1]
        if c == b"\\" and i + 1 < len(body):
            escaped = body[i + 1 : i + 2]
            out += b"\\z" if escaped == b"Z" else c + escaped
            i += 2
            continue
        out += c
        i += 1
    return bytes(out)


def _strip_verbose(body: bytes) -> bytes:
    """Apply the ``x`` flag: drop whitespace and ``#`` comments outside character classes."""
    out = bytearray()
    i, in_class = 0, False
    while i < len(body):
        c = body[i : i + 1]
        if c == b"\\" and i + 1 < len(body):
            out += body[i : i + 2]
            i += 2
            continue
        if in_class:
            in_class = c != b"]"
            out += c
        elif c == b"[":
            in_class = True
            out += c
        elif c == b"#":
            while i < len(body) and body[i : i + 1] != b"\n":
                i += 1
        elif not c.isspace():
            out += c
        i += 1
    return bytes(out)


_ESCAPES = {
    b"n": b"\n",
    b"t": b"\t",
    b"r": b"\r",
    b"f": b"\f",
    b"v": b"\v",
    b"a": b"\a",
    b"\\": b"\\",
}


def _parse_template(template: bytes, compiled: Any) -> list[_Part]:
    """Parse a Python replacement template (``\\1``, ``\\g<1>``, ``\\g<name>``, ``\\n``)."""
    groups = compiled.groups
    names = {(k.decode() if isinstance(k, bytes) else k): v for k, v in compiled.groupindex.items()}
    parts: list[_Part] = []
    literal = bytearray()
    i = 0

    def flush() -> None:
        if literal:
            parts.append(bytes(literal))
            literal.clear()

    while i < len(template):
        c = template[i : i + 1]
        if c != b"\\" or i + 1 >= len(template):
            literal += c
            i += 1
            continue
        nxt = template[i + 1 : i + 2]
        if nxt == b"g":
            end = template.find(b">", i + 3)
            if template[i + 2 : i + 3] != b"<" or end < 0:
                raise ScriptFacingError("regex.gsub: missing group name in \\g<...>")
            ref = template[i + 3 : end].decode("utf-8", "replace")
            if ref.isdigit():
                index = int(ref)
            elif ref in names:
                index = names[ref]
            else:
                raise ScriptFacingError(f"regex.gsub: unknown group name {ref!r}")
            if index > groups:
                raise ScriptFacingError(f"regex.gsub: invalid group reference {index}")
            flush()
            parts.append(index)
            i = end + 1
        elif nxt.isdigit():
            j = i + 1
            while j < len(template) and j < i + 3 and template[j : j + 1].isdigit():
                j += 1
            index = int(template[i + 1 : j])
            if index > groups:
                raise ScriptFacingError(f"regex.gsub: invalid group reference {index}")
            flush()
            parts.append(index)
            i = j
        elif nxt in _ESCAPES:
            literal += _ESCAPES[nxt]
            i += 2
        elif nxt.isalpha() and nxt.isascii():
            raise ScriptFacingError(f"regex.gsub: bad escape \\{nxt.decode()} in replacement")
        else:
            literal += template[i : i + 2]
            i += 2
    flush()
    return parts


def _expand(template: list[_Part], m: Any) -> bytes:
    out = []
    for part in template:
        if isinstance(part, bytes):
            out.append(part)
        else:
            group = m.group(part)
            if group is not None:
                out.append(group)
    return b"".join(out)
