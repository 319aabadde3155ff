"""Limits on what the host does for a script: conversions, outputs, values handed back to Lua.

lupa's ``max_memory`` counts Lua's allocations only, and an allocation refused inside lupa's
own C code deadlocks the process (or aborts it). These tests pin that every host path checks
its size first and ends the run with the right limit instead, quickly.
"""

from __future__ import annotations

import time

import pytest

from sandbox import run_script
from sandbox._errors import classify
from sandbox.testing import StubFunction, StubProvider

from .conftest import small

MiB = 1024 * 1024
DAG = "local t = {1} for i = 1, 21 do t = {t, t} end "


def timed(run, source: str, **kwargs):
    started = time.monotonic()
    envelope = run(source, **kwargs)
    return envelope, time.monotonic() - started


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        (DAG + "print(t)", "output"),
        (DAG + "dump(t)", "output"),
        (DAG + "return t", "result_size"),
        ('local s = string.rep("z", 16 * 1024 * 1024) for i = 1, 100 do pcall(print, s) end', "output"),
    ],
)
def test_shared_subtables_and_big_strings_stop_at_the_output_or_result_limit(run, source, limit):
    """A DAG with 2^21 paths is never expanded: printing or returning it stops at the limit."""
    envelope, seconds = timed(run, source, limits=small(memory_bytes=64 * MiB))
    assert envelope.error.limit == limit
    assert seconds < 5


def test_json_encode_text_must_fit_in_memory(run):
    """json.encode of 6 MB of control characters (36 MB of escapes) is a memory limit, not a hang."""
    envelope, seconds = timed(run, 'return #json.encode(string.rep("\\1", 6000000))')
    assert envelope.error.limit == "memory"
    assert seconds < 5


def test_json_encode_of_a_huge_dag_spends_the_script_limits(run):
    """The encoder runs as script code: a DAG spends instructions (or memory), never the host's."""
    envelope, seconds = timed(run, DAG + "return #json.encode(t)", limits=small(instructions=10_000_000))
    assert envelope.error.limit in ("instructions", "memory")
    assert seconds < 5


def test_json_decode_reserves_memory_before_building(run):
    """A decoded document that would not fit fails with the memory limit before it is built."""
    envelope, seconds = timed(run, 'return #json.decode("[" .. string.rep("[],", 4000000) .. "[]]")')
    assert envelope.error.limit == "memory"
    assert seconds < 5


@pytest.mark.parametrize(
    "source",
    [
        'return #regex.gsub(string.rep("a", 12000000), "a", "bb")',
        'return #regex.match_all(string.rep("ab", 2000000), "(a)(b)")',
        'return #regex.split(string.rep("a,", 3000000), ",")',
    ],
)
def test_regex_results_are_bounded(run, source):
    """regex results that would not fit fail with a limit (memory, or the instructions the
    matches cost) instead of deadlocking lupa."""
    envelope, seconds = timed(run, source, limits=small(wall_clock_seconds=20))
    assert envelope.status == "limit_exceeded"
    assert envelope.error.limit in ("memory", "instructions")
    assert seconds < 15


def test_a_provider_result_larger_than_the_memory_left_is_the_memory_limit():
    """A response that does not fit in the script's memory ends the run; nothing is built."""
    provider = StubProvider(StubFunction("get_blob", result={"body": b"x" * (40 * MiB)}))
    envelope = run_script("local b = app.integrations.replicate.get_blob() return #b.body", providers=[provider])
    assert envelope.error.limit == "memory"
    assert envelope.integration_calls[0]["error"] == "replicate.get_blob: the response does not fit in the memory limit"


def test_a_provider_result_that_fits_is_delivered():
    """The same path delivers results that fit."""
    provider = StubProvider(StubFunction("get_blob", result={"body": b"x" * (4 * MiB)}))
    envelope = run_script("local b = app.integrations.replicate.get_blob() return #b.body", providers=[provider])
    assert envelope.result == [4 * MiB]


@pytest.mark.parametrize(
    "value",
    [
        'local s = string.rep("q", 8 * 1024 * 1024) local l = {} for i = 1, 100 do l[i] = s end',
        'local l = {"leaf"} for i = 1, 24 do l = {l, l} end',
    ],
)
def test_tool_arguments_are_budgeted(run, provider, value):
    """Arguments whose Python copy would dwarf the memory limit fail before the call."""
    envelope, seconds = timed(run, value + " return app.integrations.replicate.list_predictions({extra = l})")
    assert envelope.status == "limit_exceeded"
    assert envelope.error.limit in ("memory", "instructions")
    assert provider.calls == []
    assert seconds < 5


def test_job_args_larger_than_the_memory_limit_are_refused(clock):
    """Job args that cannot fit in the memory limit end the run before the script starts."""
    envelope = run_script("return 1", args={"big": "x" * (3 * MiB)}, limits=small(memory_bytes=2 * MiB), clock=clock)
    assert envelope.error.limit == "memory"


def test_values_from_host_functions_count_in_the_memory_used(run):
    """Host results (docs, json, regex) go through the same limit as Lua's own allocations."""
    envelope = run(
        "local keep = {} for i = 1, 1e6 do keep[i] = json.decode('[1,2,3,4,5,6,7,8]') end",
        limits=small(memory_bytes=8 * MiB),
    )
    assert envelope.error.limit == "memory"


def test_print_renders_within_what_is_left_of_the_output(run):
    """Output already printed shrinks the room for the next table."""
    envelope = run('print(string.rep("x", 90)) print({string.rep("y", 20)})', limits=small(output_bytes=100))
    assert envelope.error.limit == "output"
    assert envelope.output == "x" * 90


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("argument_error", "validation"),
        ("unknown_function", "validation"),
        ("unknown_account", "validation"),
        ("permission_denied", "permission"),
        ("api_error", "api"),
        ("transport_error", "api"),
        ("configuration_error", "api"),
        ("internal_error", "internal"),
        ("something_new", "api"),
        ("runtime", "runtime"),
    ],
)
def test_error_kinds_map_onto_the_taxonomy(kind, expected):
    """Provider and bridge error kinds become one of the seven error types."""
    assert classify(kind) == expected
