"""The envelope: its shape on success and failure, results, errors, lines and tracebacks."""

from __future__ import annotations

from sandbox import Envelope, ScriptError

ENVELOPE_KEYS = {
    "job_id",
    "status",
    "success",
    "result",
    "output",
    "error",
    "execution_time_ms",
    "memory_usage",
    "instructions",
    "integration_calls",
    "meta",
}


def test_success_envelope_has_every_field(run):
    """A successful run reports status, result, output, timing, memory and meta."""
    data = run('print("hi") return 42', job_id="job-1").to_dict()
    assert set(data) == ENVELOPE_KEYS
    assert data["job_id"] == "job-1"
    assert data["status"] == "succeeded"
    assert data["success"] is True
    assert data["result"] == [42]
    assert data["output"] == "hi"
    assert data["error"] is None
    assert isinstance(data["execution_time_ms"], float)
    assert data["memory_usage"] > 0
    assert isinstance(data["instructions"], int)
    assert data["integration_calls"] == []
    assert data["meta"] == {"permission_bypassed": False}


def test_failure_envelope_has_null_result_and_an_error_object(run):
    """A failed run has success false, result null and a {type, message, line, traceback}."""
    data = run('print("before")\nerror("boom")').to_dict()
    assert set(data) == ENVELOPE_KEYS
    assert data["status"] == "failed"
    assert data["success"] is False
    assert data["result"] is None
    assert data["output"] == "before"
    assert set(data["error"]) == {"type", "message", "line", "traceback"}
    assert data["error"]["type"] == "runtime"
    assert data["error"]["message"] == "script:2: boom"


def test_all_returned_values_become_the_result_list(run):
    """`return 1, "a", {x=1}` gives the result [1, "a", {"x": 1}]."""
    assert run('return 1, "a", {x=1}').result == [1, "a", {"x": 1}]


def test_returning_nothing_gives_an_empty_result(run):
    """A chunk that returns nothing has the result []."""
    assert run("local x = 1").result == []


def test_nil_among_returned_values_is_kept_as_null(run):
    """Returned nils keep their positions as null."""
    assert run("return nil, 2, nil").result == [None, 2, None]


def test_floats_integers_and_nested_tables_convert(run):
    """Integers stay integers, floats floats, and sequences become lists."""
    assert run("return 3, 2.5, {1, {2, 3}}, {}").result == [3, 2.5, [1, [2, 3]], []]


def test_permission_bypassed_reports_allow_writes(run):
    """meta.permission_bypassed is true whenever writes were allowed, as in the reference."""
    assert run("return 1", allow_writes=True).meta == {"permission_bypassed": True}


def test_syntax_error_reports_its_line(run):
    """A syntax error ends the run with syntax_error and the line Lua names."""
    envelope = run("local a = 1\nlocal b = 2\nlocal = 3")
    assert envelope.status == "failed"
    assert envelope.error.type == "syntax"
    assert envelope.error.line == 3
    assert envelope.error.message.startswith("script:3:")
    assert envelope.error.traceback is None


def test_runtime_error_reports_line_and_script_only_traceback(run):
    """A runtime error gives its line and a traceback made of script lines only."""
    envelope = run("local t = nil\nlocal function f()\n  return t.x\nend\nlocal v = f()\nreturn v")
    assert envelope.error.type == "runtime"
    assert envelope.error.line == 3
    assert "attempt to index a nil value" in envelope.error.message
    lines = envelope.error.traceback.splitlines()
    assert lines[0] == "stack traceback:"
    assert all(line.strip().startswith("script:") for line in lines[1:])
    assert "script:3:" in lines[1]
    assert "[sandbox]" not in envelope.error.traceback


def test_chunk_name_names_the_script_in_messages(run):
    """chunk_name replaces `script` in messages and line parsing."""
    envelope = run("\nerror('x')", chunk_name="workflow.lua")
    assert envelope.error.message == "workflow.lua:2: x"
    assert envelope.error.line == 2


def test_table_error_is_reported_by_its_message_field(run):
    """An error value that is a table with a message field is reported by that message."""
    envelope = run('error({message = "custom failure", code = 7})')
    assert envelope.error.type == "runtime"
    assert envelope.error.message == "custom failure"
    assert envelope.error.line == 1


def test_other_error_values_are_described_without_running_metamethods(run):
    """A table error without a message is shown as JSON by raw access; __tostring is not run."""
    envelope = run("error(setmetatable({}, {__tostring = function() while true do end end}))")
    assert envelope.error.message == "error object: []"
    assert run("error({code = 1})").error.message == 'error object: {"code": 1}'
    assert run("error({f = print})").error.message == "(error object is a table value)"
    assert run("error(42)").error.message == "42"
    assert run("error()").error.message == "(error object is a nil value)"


def test_function_in_result_fails_with_a_clear_message(run):
    """A returned value with no JSON form fails the run and names where it is."""
    envelope = run("return 1, {f = print}")
    assert envelope.status == "failed"
    assert envelope.error.type == "runtime"
    assert envelope.error.message == "return value #2: cannot convert a function to JSON at $.f"


def test_cyclic_result_fails(run):
    """A returned table that contains itself fails the run."""
    envelope = run("local t = {} t.me = t return t")
    assert "contains itself" in envelope.error.message


def test_envelope_round_trips_through_dict():
    """Envelope.from_dict(to_dict()) gives an equal envelope."""
    envelope = Envelope(
        status="failed",
        job_id="j",
        output="x",
        error=ScriptError("runtime", "script:1: boom", 1, "stack traceback:"),
        memory_usage=10,
        instructions=1000,
        integration_calls=[{"path": "integrations.replicate.get_account"}],
        meta={"permission_bypassed": False},
    )
    assert Envelope.from_dict(envelope.to_dict()) == envelope


def test_output_joins_print_calls_with_newlines(run):
    """Each print call is one output entry; output joins them with newlines."""
    assert run('print("a") print("b", "c")').output == "a\nb\tc"


def test_forged_error_fields_do_not_run_script_code(run):
    """A caught error whose fields were replaced by tables is reported without running them."""
    envelope = run(
        """
        local _, e = pcall(app.integrations.replicate.get_prediction, {prediction_id = "x"})
        local spin = setmetatable({}, {__tostring = function() while true do end end})
        rawset(e, "type", spin)
        rawset(e, "message", spin)
        error(e)
        """
    )
    assert envelope.error.type == "runtime"
    assert envelope.error.message.startswith("error object: {")


def test_limit_errors_name_the_limit_in_the_envelope(run):
    """A limit error is type limit_exceeded with error.limit naming the limit; others have no limit."""
    data = run("while true do end", limits=__import__("sandbox").Limits.DEFAULT.replace(instructions=10_000)).to_dict()
    assert data["status"] == "limit_exceeded"
    assert data["error"]["type"] == "limit_exceeded"
    assert data["error"]["limit"] == "instructions"
    assert "limit" not in run("error('x')").to_dict()["error"]


def test_limit_errors_round_trip_through_dict():
    """Envelope.from_dict keeps error.limit."""
    from sandbox import LimitExceeded

    envelope = Envelope(status="limit_exceeded", error=LimitExceeded("memory", "memory limit exceeded (1 byte)", 3))
    again = Envelope.from_dict(envelope.to_dict())
    assert again == envelope
    assert again.error.limit == "memory"


def test_a_script_cannot_forge_the_error_type(run):
    """Rewriting a caught error value's type cannot make the envelope claim a limit or a syntax error."""
    envelope = run(
        """
        local _, e = pcall(app.integrations.replicate.get_prediction, {prediction_id = "x"})
        rawset(e, "type", "limit_exceeded")
        error(e)
        """
    )
    assert envelope.status == "failed"
    assert envelope.error.type == "runtime"


def test_internal_errors_show_nothing_of_the_host(run, provider):
    """An exception inside the host is reported as internal, without its text or traceback."""
    provider.set_result("list_predictions", RuntimeError("/srv/secret/path.py line 3"))
    envelope = run("return app.integrations.replicate.list_predictions()")
    assert envelope.error.type == "internal"
    assert "secret" not in envelope.error.message and ".py" not in envelope.error.message
