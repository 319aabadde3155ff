"""Benchmark of the Lua sandbox: the evidence behind sandbox/ENGINE.md. Not a test.

    .venv/bin/python ops/bench/sandbox.py [--quick] [--out ops/bench/sandbox-report.json]

Measures, in one run:

(a) set-up plus ``return 1`` per job through ``sandbox.run_script``: median and p95 (ms);
(b) a compute-bound script under all limits through ``run_script``, divided by the same script
    on a bare, unlimited ``lupa.lua54.LuaRuntime()`` (runs alternate A/B; medians);
(c) the same ratio for the alternatives: Lua 5.4 with a count hook (``debug.sethook``) at a
    few periods, and LuaJIT 2.1 (``lupa.luajit21``) unhooked, hooked with the JIT on (the
    hook never fires inside compiled traces) and hooked with the JIT off;
(d) both ratios (run_script, and a count hook every 1000) for a few workload shapes: a tight
    loop, calls, string functions, tables and a sort.

Prints the figures and writes them as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox import Limits, run_script  # noqa: E402
from sandbox._env import SLICE_MAX, SLICE_MIN, SLICE_START, SLICE_TARGET  # noqa: E402
from sandbox._instrument import _TICK  # noqa: E402
from sandbox._lupa import lua54  # noqa: E402

# A compute-bound job: arithmetic and table work in a loop, recursion, string building, a
# sort and counting, as agent scripts do (about 0.3 s on a bare runtime).
WORKLOAD = """
local function work(n)
  local t, s = {}, 0
  for i = 1, n do
    t[i % 1000 + 1] = i * 2
    s = s + (t[(i * 7) % 1000 + 1] or 0)
    if i % 3 == 0 then s = s - 1 end
  end
  return s
end

local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

local function records(n)
  local out = {}
  for i = 1, n do
    out[#out + 1] = { id = "p" .. i, score = (i * 37) % 101, tags = { "a", "b" } }
  end
  table.sort(out, function(a, b) return a.score < b.score end)
  local counts = {}
  for _, r in ipairs(out) do
    local key = "s" .. r.score
    counts[key] = (counts[key] or 0) + 1
  end
  local words = {}
  for i = 1, n do
    words[#words + 1] = string.format("%s-%d", "w", i % 50)
  end
  return #table.concat(words, ","), counts.s0
end

return work(LOOP), fib(FIB), records(RECORDS)
"""

# A count hook installed the way the research note describes, on a bare runtime.
HOOKED = b"""
local source, period = ...
local counted = 0
local function hook() counted = counted + period end
local f = assert(load(source))
local co = coroutine.create(f)
debug.sethook(co, hook, "", period)
local ok, err = coroutine.resume(co)
assert(ok, err)
return counted
"""

LUAJIT_SETUP = b"""
local source, period, jit_off = ...
if jit_off then jit.off() end
local f = assert(loadstring(source))
local co = coroutine.create(f)
if period > 0 then debug.sethook(co, function() end, "", period) end
local ok, err = coroutine.resume(co)
assert(ok, err)
"""


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def measure_setup(runs: int) -> dict[str, float]:
    """(a) run_script('return 1'): set-up, run and tear-down of one job."""
    for _ in range(50):
        run_script("return 1")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        envelope = run_script("return 1")
        times.append(time.perf_counter() - started)
        assert envelope.result == [1]
    times.sort()
    return {
        "runs": runs,
        "median_ms": _ms(statistics.median(times)),
        "p95_ms": _ms(times[int(len(times) * 0.95) - 1]),
        "min_ms": _ms(times[0]),
    }


def _bare(source: str) -> float:
    lua = lua54.LuaRuntime()
    started = time.perf_counter()
    lua.execute(source)
    return time.perf_counter() - started


def _sandboxed(source: str) -> float:
    limits = Limits.MAXIMUM.replace(wall_clock_seconds=600.0)
    started = time.perf_counter()
    envelope = run_script(source, limits=limits)
    elapsed = time.perf_counter() - started
    assert envelope.status == "succeeded", envelope.error
    return elapsed


def _hooked(source: str, period: int) -> float:
    lua = lua54.LuaRuntime(encoding=None)
    started = time.perf_counter()
    lua.execute(HOOKED, source.encode(), period)
    return time.perf_counter() - started


SHAPES = {
    "tight loop": "local s = 0 for i = 1, 20000000 do s = s + i % 7 end return s",
    "calls (fib 30)": "local function fib(n) if n < 2 then return n end return fib(n-1) + fib(n-2) end return fib(30)",
    "string functions": (
        "local n = 0 for i = 1, 300000 do local s = ('item-' .. i):gsub('%-', '_')"
        " if s:find('_1') then n = n + 1 end end return n"
    ),
    "tables and a sort": (
        "local t = {} for i = 1, 300000 do t[#t + 1] = {i, tostring(i)} end"
        " table.sort(t, function(a, b) return a[1] > b[1] end) return #t"
    ),
}


def measure_shapes(rounds: int) -> list[dict[str, Any]]:
    out = []
    for name, source in SHAPES.items():
        sandboxed = _ratio(name, lambda source=source: _sandboxed(source), lambda source=source: _bare(source), rounds)
        hooked = _ratio(name, lambda source=source: _hooked(source, 1000), lambda source=source: _bare(source), rounds)
        out.append({"shape": name, "run_script": sandboxed["ratio"], "count_hook_1000": hooked["ratio"]})
    return out


def _ratio(label: str, candidate: Any, baseline: Any, rounds: int) -> dict[str, Any]:
    """Alternate baseline and candidate (ABAB), then compare the medians."""
    base, cand = [], []
    for _ in range(rounds):
        base.append(baseline())
        cand.append(candidate())
    b, c = statistics.median(base), statistics.median(cand)
    return {"label": label, "baseline_ms": _ms(b), "candidate_ms": _ms(c), "ratio": round(c / b, 3)}


def measure_compute(rounds: int, source: str) -> list[dict[str, Any]]:
    results = [
        _ratio("run_script (all limits) / bare lua54", lambda: _sandboxed(source), lambda: _bare(source), rounds)
    ]
    for period in (100, 1000, 10000, 1000000):
        results.append(
            _ratio(
                f"lua54 count hook every {period} / bare lua54",
                lambda period=period: _hooked(source, period),
                lambda: _bare(source),
                rounds,
            )
        )
    return results


def measure_luajit(rounds: int, source: str) -> list[dict[str, Any]] | dict[str, str]:
    try:
        luajit = importlib.import_module("lupa.luajit21")
        luajit.LuaRuntime().execute("return 1")
    except Exception as exc:  # not every platform has it
        return {"unavailable": f"{type(exc).__name__}: {exc}"}
    jit_source = source.encode()

    def run(period: int, jit_off: bool) -> float:
        lua = luajit.LuaRuntime(encoding=None)
        started = time.perf_counter()
        lua.execute(LUAJIT_SETUP, jit_source, period, jit_off)
        return time.perf_counter() - started

    out = []
    for label, period, jit_off in (
        ("luajit21 unhooked", 0, False),
        ("luajit21 hook every 1000, JIT on (hook does not fire in traces)", 1000, False),
        ("luajit21 hook every 1000, JIT off", 1000, True),
    ):
        out.append(
            _ratio(f"{label} / bare lua54", lambda p=period, j=jit_off: run(p, j), lambda: _bare(source), rounds)
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 30 s)")
    parser.add_argument("--out", default=str(REPO / "ops" / "bench" / "sandbox-report.json"))
    options = parser.parse_args(argv)
    rounds = 5 if options.quick else 11
    sizes = {"loop": 5_000_000, "fib": 27, "records": 40_000}
    source = WORKLOAD.replace("LOOP", str(sizes["loop"])).replace("FIB", str(sizes["fib"]))
    source = source.replace("RECORDS", str(sizes["records"]))

    started = time.perf_counter()
    setup = measure_setup(300 if options.quick else 1000)
    compute = measure_compute(rounds, source)
    luajit = measure_luajit(rounds, source)
    shapes = measure_shapes(3 if options.quick else 5)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpu": platform.machine()},
        "lupa": importlib.import_module("lupa").__version__,
        "settings": {
            "tick": _TICK.decode().strip(),
            "slice_start": SLICE_START,
            "slice_min": SLICE_MIN,
            "slice_max": SLICE_MAX,
            "slice_target_seconds": SLICE_TARGET,
        },
        "workload": sizes,
        "a_setup_return_1": setup,
        "b_compute_ratio": compute[0],
        "c_alternatives": compute[1:],
        "c_luajit": luajit,
        "d_shapes": shapes,
        "goals": {"a_median_ms": 1.0, "b_ratio": 1.3},
        "seconds": round(time.perf_counter() - started, 1),
    }

    print(f"(a) run_script('return 1'): median {setup['median_ms']} ms, p95 {setup['p95_ms']} ms (goal <= 1 ms median)")
    row = compute[0]
    print(f"(b) {row['label']}: {row['candidate_ms']} / {row['baseline_ms']} ms = {row['ratio']} (goal <= 1.3)")
    print("(c) alternatives, same workload:")
    for row in [*compute[1:], *(luajit if isinstance(luajit, list) else [])]:
        print(f"    {row['label']}: {row['candidate_ms']} / {row['baseline_ms']} ms = {row['ratio']}")
    if isinstance(luajit, dict):
        print(f"    luajit21: {luajit['unavailable']}")
    print("(d) ratio to bare lua54 by workload shape: run_script / count hook every 1000")
    for row in shapes:
        print(f"    {row['shape']}: {row['run_script']} / {row['count_hook_1000']}")
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    Path(options.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {options.out} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
