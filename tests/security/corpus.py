"""The attack corpus: ``tests/security/attacks/*.lua``, each with its expected outcome.

Every attack file starts with a header of ``-- key: value`` comment lines (the header ends at
the first line that is not such a comment)::

    -- class: cpu
    -- expect: status=limit_exceeded limit=instructions
    -- limits: instructions=2000000 wall_clock_seconds=5
    -- needs: replicate
    -- allow_writes: true
    -- output_contains: some text
    -- result: [1, "two"]

Keys:

``class``               the attack class (``cpu``, ``c_call``, ``memory``, ``python_escape``,
                        ``host_escape``, ``cross_job``, ``crash``, ``after_limit``)
``expect``              space-separated ``field=value`` checks on the envelope: ``status``,
                        ``type`` (``error.type``), ``limit`` (``error.limit``); ``a|b`` accepts
                        either value
``limits``              space-separated ``name=value`` job limits (``Limits`` field names, the
                        same keys a submission's ``limits`` takes)
``needs``               ``replicate``: run it with the Replicate provider (the simulator)
``allow_writes``        ``true``: the job may call write operations (``--force``)
``result``              JSON: ``envelope.result`` must equal it
``output_contains``     ``envelope.output`` must contain the text (repeatable)
``not_output_contains`` ``envelope.output`` must not contain the text (repeatable)
``message_contains``    ``error.message`` must contain the text (repeatable)
``not_message_contains`` ``error.message`` must not contain the text (repeatable)
``max_seconds``         ``execution_time_ms`` must be at most this many seconds
``description``         free text

Expectations are stated in envelope terms only, so they hold whether the script ran in-process
(``run_script``), through ``luaq run`` or in a worker. :func:`load_attacks` reads the corpus and
:func:`check` compares an envelope (as a dict) with an attack's expectations.

After every attack, :data:`CANARY` run in a fresh job must pass :func:`check_canary`: nothing
an attack did may change how the next job behaves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ATTACKS_DIR", "CANARY", "CLASSES", "Attack", "check", "check_canary", "load_attacks"]

ATTACKS_DIR = Path(__file__).parent / "attacks"

CLASSES = ("cpu", "c_call", "memory", "python_escape", "host_escape", "cross_job", "crash", "after_limit")

_MULTI = {"output_contains", "not_output_contains", "message_contains", "not_message_contains"}
_SINGLE = {"class", "expect", "limits", "needs", "allow_writes", "result", "max_seconds", "description"}
_EXPECT_FIELDS = {"status", "type", "limit"}

# A job run after each attack, in a fresh sandbox: string methods, the string metatable, _G,
# print, json, regex, pcall and error messages must all behave as usual.
CANARY = r"""
local s = ("Hello"):upper() .. string.format("%d", 42) .. string.rep("x", 2)
assert(s == "HELLO42xx", "string methods")
assert(("a,b"):find(",", 1, true) == 2 and ("key=val"):match("^(%w+)=") == "key", "patterns")
assert(getmetatable("").__index.upper("a") == "A", "string metatable")
assert(_G.print == print and type(_G.json) == "table" and _G._G == _G, "globals")
assert(json.encode({a = {1, 2}}) == '{"a":[1,2]}' and json.decode("[1]")[1] == 1, "json")
assert(regex.match("ab12", "\\d+")[1] == "12", "regex")
assert(select("#", table.unpack({1, 2, 3})) == 3 and table.concat({1, 2}, "-") == "1-2", "table")
local ok, err = pcall(error, "boom")
assert(not ok and err == "boom", "pcall/error")
local ok2, err2 = pcall(function() local x = nil return x.y end)
assert(not ok2 and err2:find("attempt to index a nil value", 1, true), "error messages")
assert(io == nil and os.execute == nil and debug == nil and python == nil, "no host libraries")
print("canary", 1, {1})
return "ok", #string.rep("ab", 3), math.floor(2.5), coroutine.wrap(function() coroutine.yield(7) end)()
"""

_CANARY_RESULT = ["ok", 6, 2, 7]
_CANARY_OUTPUT = "canary\t1\t[1]"


@dataclass(frozen=True)
class Attack:
    """One attack script and what must come of it."""

    name: str  # the file name without .lua
    path: Path
    source: str
    klass: str
    expectations: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int | float] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    allow_writes: bool = False
    description: str = ""

    def __repr__(self) -> str:
        return f"Attack({self.name!r}, class={self.klass!r})"


def load_attacks(directory: Path = ATTACKS_DIR) -> list[Attack]:
    """Every attack in ``directory``, sorted by name. Raises ``ValueError`` for a malformed
    header."""
    return [parse(path) for path in sorted(directory.glob("*.lua"))]


def parse(path: Path) -> Attack:
    source = path.read_text(encoding="utf-8")
    header: dict[str, Any] = {}
    for line in source.splitlines():
        if not line.startswith("-- ") or ":" not in line:
            break
        key, _, value = line[3:].partition(":")
        key, value = key.strip(), value.strip()
        if key in _MULTI:
            header.setdefault(key, []).append(value)
        elif key in _SINGLE:
            if key in header:
                raise ValueError(f"{path.name}: {key!r} given twice")
            header[key] = value
        else:
            raise ValueError(f"{path.name}: unknown header key {key!r}")
    klass = header.get("class")
    if klass not in CLASSES:
        raise ValueError(f"{path.name}: class must be one of {', '.join(CLASSES)}, got {klass!r}")
    expectations: dict[str, Any] = {}
    for token in header.get("expect", "").split():
        name, _, value = token.partition("=")
        if name not in _EXPECT_FIELDS or not value:
            raise ValueError(f"{path.name}: bad expectation {token!r}")
        expectations[name] = tuple(value.split("|"))
    if "status" not in expectations:
        raise ValueError(f"{path.name}: an 'expect: status=...' line is required")
    if "result" in header:
        expectations["result"] = json.loads(header["result"])
    if "max_seconds" in header:
        expectations["max_seconds"] = float(header["max_seconds"])
    for key in _MULTI:
        if key in header:
            expectations[key] = tuple(header[key])
    limits: dict[str, int | float] = {}
    for token in header.get("limits", "").split():
        name, _, value = token.partition("=")
        limits[name] = float(value) if name == "wall_clock_seconds" else int(value)
    return Attack(
        name=path.stem,
        path=path,
        source=source,
        klass=klass,
        expectations=expectations,
        limits=limits,
        needs=tuple(header.get("needs", "").split()),
        allow_writes=header.get("allow_writes", "false") == "true",
        description=header.get("description", ""),
    )


def check(envelope: dict[str, Any], attack: Attack, *, timing: bool = True) -> list[str]:
    """What in ``envelope`` (``Envelope.to_dict()`` or a job's result JSON) contradicts the
    attack's expectations; empty when it behaved as expected."""
    problems: list[str] = []
    expected = attack.expectations
    error = envelope.get("error") or {}
    actual = {"status": envelope.get("status"), "type": error.get("type"), "limit": error.get("limit")}
    for name in ("status", "type", "limit"):
        if name in expected and actual[name] not in expected[name]:
            want = "|".join(expected[name])
            problems.append(f"{name}: expected {want}, got {actual[name]!r} (error: {error.get('message')!r})")
    if "result" in expected and envelope.get("result") != expected["result"]:
        problems.append(f"result: expected {expected['result']!r}, got {envelope.get('result')!r}")
    output = envelope.get("output") or ""
    for text in expected.get("output_contains", ()):
        if text not in output:
            problems.append(f"output does not contain {text!r}")
    for text in expected.get("not_output_contains", ()):
        if text in output:
            problems.append(f"output contains {text!r}")
    message = error.get("message") or ""
    for text in expected.get("message_contains", ()):
        if text not in message:
            problems.append(f"error message {message!r} does not contain {text!r}")
    for text in expected.get("not_message_contains", ()):
        if text in message:
            problems.append(f"error message contains {text!r}")
    if "max_seconds" in expected and timing:
        seconds = (envelope.get("execution_time_ms") or 0) / 1000
        if seconds > expected["max_seconds"]:
            problems.append(f"took {seconds:.2f} s, more than {expected['max_seconds']} s")
    return problems


def check_canary(envelope: dict[str, Any]) -> list[str]:
    """What is wrong with the canary's envelope; empty when it behaved normally."""
    problems: list[str] = []
    if envelope.get("status") != "succeeded":
        problems.append(f"canary did not succeed: {envelope.get('error')!r}")
    if envelope.get("result") != _CANARY_RESULT:
        problems.append(f"canary result {envelope.get('result')!r} != {_CANARY_RESULT!r}")
    if envelope.get("output") != _CANARY_OUTPUT:
        problems.append(f"canary output {envelope.get('output')!r} != {_CANARY_OUTPUT!r}")
    return problems
