"""Limits: the value object, and each limit ending a run however the script resists."""

from __future__ import annotations

import pytest

from sandbox import Limits
from sandbox.testing import FakeClock

from .conftest import small

# Limits.from_request -----------------------------------------------------------------------


def test_from_request_fills_missing_values_from_the_default():
    """Requested values replace the defaults; the rest stay."""
    limits = Limits.from_request({"instructions": 5000, "wall_clock_seconds": 1.5})
    assert limits == Limits.DEFAULT.replace(instructions=5000, wall_clock_seconds=1.5)
    assert Limits.from_request(None) == Limits.DEFAULT


def test_from_request_rejects_unknown_keys():
    """An unknown limit is a ValueError naming it."""
    with pytest.raises(ValueError, match="unknown limit 'cpu'"):
        Limits.from_request({"cpu": 1})


@pytest.mark.parametrize("value", [0, -1, "100", None, True, 1.5, float("nan")])
def test_from_request_rejects_bad_values(value):
    """Non-positive, non-numeric and non-integral values are rejected with the key named."""
    with pytest.raises(ValueError, match=r"limits\.calls .*at most 10000"):
        Limits.from_request({"calls": value})


def test_from_request_rejects_values_above_the_maximum():
    """A value above the maximum is a ValueError naming the key and the maximum."""
    with pytest.raises(ValueError, match=r"limits\.memory_bytes .* maximum of 268435456 bytes"):
        Limits.from_request({"memory_bytes": 257 * 1024 * 1024})


def test_from_request_uses_the_given_default_and_maximum():
    """Server defaults and maximums can be passed in."""
    default = Limits(calls=10)
    maximum = Limits(calls=20)
    assert Limits.from_request({}, default=default, maximum=maximum).calls == 10
    assert Limits.from_request({"calls": 20}, default=default, maximum=maximum).calls == 20
    with pytest.raises(ValueError, match="maximum of 20 calls"):
        Limits.from_request({"calls": 21}, default=default, maximum=maximum)


def test_defaults_and_maximums():
    """The documented defaults and maximums."""
    assert Limits.DEFAULT.to_dict() == {
        "instructions": 100_000_000,
        "memory_bytes": 32 * 1024 * 1024,
        "wall_clock_seconds": 300.0,
        "output_bytes": 1024 * 1024,
        "calls": 1000,
        "result_bytes": 1024 * 1024,
        "predictions": 100,
        "writes": 500,
    }
    assert Limits.MAXIMUM.instructions == 2_000_000_000
    assert Limits.MAXIMUM.memory_bytes == 256 * 1024 * 1024
    # Spend caps: a job may lower them, never raise them.
    assert (Limits.MAXIMUM.predictions, Limits.MAXIMUM.writes) == (100, 500)


# Instructions ------------------------------------------------------------------------------


def test_instruction_limit_ends_an_endless_loop(run):
    """An endless loop ends with the instruction limit, its line and the instructions used."""
    envelope = run("local x = 0\nwhile true do x = x + 1 end", limits=small(instructions=100_000))
    assert envelope.status == "limit_exceeded"
    assert envelope.success is False
    assert envelope.error.limit == "instructions"
    assert envelope.error.message == "instruction limit exceeded (100000 instructions)"
    assert envelope.error.line == 2
    assert envelope.instructions == 100_000


def test_instructions_are_reported(run):
    """A run reports the instructions it used (weighted ticks, charged by slices)."""
    envelope = run("local s = 0 for i = 1, 100000 do s = s + i end return s")
    assert envelope.result == [5000050000]
    assert 100_000 <= envelope.instructions <= 400_000


def test_instruction_limit_survives_pcall_in_a_loop(run):
    """pcall cannot swallow the limit: the run still ends with the instruction limit."""
    envelope = run(
        """
        local caught = 0
        while true do
          local ok = pcall(function() while true do end end)
          caught = caught + 1
        end
        """,
        limits=small(instructions=100_000),
    )
    assert envelope.error.limit == "instructions"


def test_instruction_limit_cannot_be_reported_as_success(run):
    """Even a script that catches the limit and returns normally ends limit_exceeded."""
    envelope = run(
        "local ok = pcall(function() while true do end end) return 'survived'",
        limits=small(instructions=100_000),
    )
    assert envelope.status == "limit_exceeded"
    assert envelope.result is None


def test_instruction_limit_survives_an_xpcall_handler_that_spins(run):
    """A message handler is not called for a limit error (its loops could only tick and fail)."""
    envelope = run(
        "xpcall(function() while true do end end, function() while true do end end)",
        limits=small(instructions=100_000),
    )
    assert envelope.error.limit == "instructions"


def test_xpcall_handler_runs_for_ordinary_errors(run):
    """Without a limit, xpcall's handler works as usual."""
    envelope = run('return xpcall(function() error("x", 0) end, function(m) return "got " .. m end)')
    assert envelope.result == [False, "got x"]


@pytest.mark.parametrize(
    "source",
    [
        "coroutine.wrap(function() while true do end end)()",
        "coroutine.resume(coroutine.create(function() while true do end end))",
        "coroutine.wrap(function()\n  while true do pcall(function() while true do end end) end\nend)()",
    ],
)
def test_instruction_limit_applies_inside_coroutines(run, source):
    """Loops inside coroutines are counted and stopped too."""
    envelope = run(source, limits=small(instructions=100_000))
    assert envelope.error.limit == "instructions"


def test_work_inside_c_functions_is_charged(run):
    """string.rep and table.move count their size against the instruction budget."""
    moved = run("return #table.move({}, 1, 1e12, 2)", limits=small(instructions=100_000))
    assert moved.error.limit == "instructions"
    assert run('return #string.rep("", 1e15)').result == [0]


# Wall clock --------------------------------------------------------------------------------


def test_wall_clock_ends_a_busy_script():
    """The ticks read the injected clock and end a run past its deadline."""
    clock = FakeClock(tick=0.01)
    from sandbox import run_script

    envelope = run_script("while true do end", clock=clock, sleep=clock.sleep, limits=small(wall_clock_seconds=2))
    assert envelope.error.limit == "wall_clock"
    assert envelope.error.message == "wall clock limit exceeded (2 seconds)"


def test_sleep_uses_the_injected_sleep(run, clock):
    """sleep(s) goes through the bridge to the injected sleep and counts as wall time."""
    envelope = run("local t = os.clock() sleep(5) sleep(0.25) return 1")
    assert envelope.result == [1]
    assert clock.slept == [5, 0.25]
    assert envelope.execution_time_ms == 5250.0
    assert envelope.instructions < 1000


def test_sleep_past_the_deadline_ends_the_run_at_the_deadline(run, clock):
    """A sleep longer than the time left sleeps until the deadline, then wall_clock_limit."""
    envelope = run("sleep(3)\nsleep(100)\nreturn 1", limits=small(wall_clock_seconds=10))
    assert clock.slept == [3, 7]
    assert envelope.error.limit == "wall_clock"
    assert envelope.error.line == 2


def test_sleep_rejects_bad_durations(run):
    """sleep needs a non-negative number."""
    assert "non-negative" in run("sleep(-1)").error.message
    assert "non-negative" in run('sleep("x")').error.message


def test_time_in_provider_calls_counts_against_the_wall_clock(run, provider, clock):
    """Waiting for calls uses no instructions but ends the run at the deadline."""

    def slow(args, account):
        clock.advance(4)
        return {}

    provider.set_result("list_predictions", slow)
    envelope = run(
        "for i = 1, 10 do app.integrations.replicate.list_predictions() end",
        limits=small(wall_clock_seconds=10),
    )
    assert envelope.error.limit == "wall_clock"
    assert len(provider.calls) == 3
    assert envelope.instructions < 1000


# Memory ------------------------------------------------------------------------------------


def test_memory_limit_ends_a_growing_table(run):
    """A table growing past memory_bytes ends the run with memory_limit."""
    envelope = run("local t = {} for i = 1, 1e8 do t[i] = i end", limits=small(memory_bytes=2 * 1024 * 1024))
    assert envelope.error.limit == "memory"
    assert envelope.status == "limit_exceeded"


def test_memory_limit_survives_pcall(run):
    """A refused allocation caught by pcall still ends the run with memory_limit."""
    envelope = run(
        """
        local ok = pcall(function() local s = "x" for i = 1, 40 do s = s .. s end end)
        return "survived", ok
        """,
        limits=small(memory_bytes=2 * 1024 * 1024),
    )
    assert envelope.error.limit == "memory"


def test_memory_usage_is_reported(run):
    """memory_usage reports the bytes Lua holds."""
    small_run = run("return 1").memory_usage
    big_run = run("local t = {} for i = 1, 100000 do t[i] = i end return #t").memory_usage
    assert big_run > small_run + 1_000_000


# Output ------------------------------------------------------------------------------------


def test_output_limit_counts_bytes_and_keeps_what_fit(run):
    """Printing past output_bytes ends the run; the lines that fit are kept."""
    envelope = run('for i = 1, 100 do print("0123456789") end', limits=small(output_bytes=55))
    assert envelope.error.limit == "output"
    assert envelope.output == "\n".join(["0123456789"] * 5)


def test_output_limit_survives_pcall(run):
    """pcall around print does not swallow the output limit."""
    envelope = run('pcall(print, string.rep("x", 100)) return "survived"', limits=small(output_bytes=10))
    assert envelope.error.limit == "output"


# Calls -------------------------------------------------------------------------------------


def test_call_limit_ends_the_run_at_the_next_call(run, provider):
    """The call after the last allowed one ends the run, even under pcall."""
    envelope = run(
        "for i = 1, 10 do pcall(app.integrations.replicate.get_account) end",
        limits=small(calls=3),
    )
    assert envelope.error.limit == "calls"
    assert len(provider.calls) == 3
    assert len(envelope.integration_calls) == 3


# Result size -------------------------------------------------------------------------------


def test_result_size_limit(run):
    """A result larger than result_bytes (as compact JSON) ends with result_size_limit."""
    envelope = run('return string.rep("x", 100)', limits=small(result_bytes=50))
    assert envelope.status == "limit_exceeded"
    assert envelope.error.limit == "result_size"
    assert envelope.result is None
    assert run('return string.rep("x", 40)', limits=small(result_bytes=50)).result == ["x" * 40]
