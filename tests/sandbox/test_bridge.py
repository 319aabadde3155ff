"""app.integrations: names, accounts, permissions, conversion, provider errors, call records."""

from __future__ import annotations

import pytest

from sandbox import PermissionDenied
from sandbox.testing import StubError

from .conftest import small


def test_default_short_long_and_slug_names_call_the_same_function(run, provider):
    """Every name of a function calls it, with the default account unless one is named."""
    envelope = run(
        """
        local r = app.integrations.replicate
        return r.get_account().username, r.get_authenticated_account().username,
               r.replicate_get_account().username, r.default.get_account().username,
               r.work.get_account().username
        """
    )
    assert envelope.result == ["alice"] * 5
    assert [(c.function, c.account) for c in provider.calls] == [
        ("get_authenticated_account", "default"),
        ("get_authenticated_account", "default"),
        ("get_authenticated_account", "default"),
        ("get_authenticated_account", "default"),
        ("get_authenticated_account", "work"),
    ]


def test_missing_argument_table_sends_an_empty_object(run, provider):
    """A call without an argument sends {}."""
    run("app.integrations.replicate.get_account()")
    assert provider.calls[0].args == {}


def test_unknown_function_names_the_nearest_functions(run):
    """An unknown function fails where it is indexed and suggests the close names."""
    envelope = run("local x = 1\nlocal f = app.integrations.replicate.get_acount")
    assert envelope.error.type == "validation"
    assert envelope.error.message == (
        "unknown function app.integrations.replicate.get_acount; did you mean: get_account, get_authenticated_account?"
    )
    assert envelope.error.line == 2


def test_unknown_account_names_the_nearest_accounts(run):
    """An unknown account fails with the close account names."""
    envelope = run("return app.integrations.replicate.wrok.get_account()")
    assert envelope.error.type == "validation"
    assert envelope.error.message == ("unknown account app.integrations.replicate.wrok; did you mean: work?")


def test_unknown_function_under_an_account_is_reported(run):
    """Under a named account, only function names resolve."""
    envelope = run("return app.integrations.replicate.work.get_predicton({})")
    assert envelope.error.type == "validation"
    assert "app.integrations.replicate.work.get_predicton" in envelope.error.message
    assert "get_prediction" in envelope.error.message


def test_unknown_integration_names_the_known_ones(run):
    """app.integrations.<unknown> names the integrations there are."""
    envelope = run("return app.integrations.replicat.get_account()")
    assert envelope.error.type == "validation"
    assert envelope.error.message == ("unknown integration app.integrations.replicat; did you mean: replicate?")


def test_unknown_names_are_catchable(run):
    """A lookup error can be caught with pcall and carries its type and kind."""
    envelope = run(
        "local ok, e = pcall(function() return app.integrations.replicate.nope end)\nreturn ok, e.type, e.kind"
    )
    assert envelope.result == [False, "validation", "unknown_function"]


def test_write_without_allow_writes_is_a_permission_error(run, provider):
    """A write function without allow_writes raises a permission error and is not called."""
    envelope = run("local p = app.integrations.replicate.create_prediction({})\nreturn p")
    assert envelope.status == "failed"
    assert envelope.error.type == "permission"
    assert isinstance(envelope.error, PermissionDenied)
    assert envelope.error.message == (
        "replicate.create_prediction is a write operation; writes need --force (allow_writes)"
    )
    assert envelope.error.line == 1
    assert provider.calls == []
    assert envelope.integration_calls[0]["status"] == "error"


def test_permission_denied_is_catchable(run):
    """A refused write is an ordinary catchable error value (type permission)."""
    envelope = run(
        "local ok, e = pcall(app.integrations.replicate.create_prediction, {})\nreturn ok, e.type, e.kind, tostring(e)"
    )
    assert envelope.result[:3] == [False, "permission", "permission_denied"]
    assert envelope.result[3].startswith("replicate.create_prediction is a write operation")


def test_write_with_allow_writes_is_called(run, provider):
    """With allow_writes a write function is called and its result returned."""
    envelope = run(
        'return app.integrations.replicate.create_prediction({version = "v"}).id',
        allow_writes=True,
    )
    assert envelope.result == ["p1"]
    assert provider.calls[0].args == {"version": "v"}


def test_provider_error_is_catchable_and_carries_its_fields(run):
    """A provider error is a catchable value with status, title, detail, operation, type and
    the provider's own error_type as kind."""
    envelope = run(
        """
        local ok, e = pcall(app.integrations.replicate.get_prediction, {prediction_id = "x"})
        return ok, e.status, e.title, e.detail, e.operation, e.type, e.kind, e.message, tostring(e)
        """
    )
    message = "replicate.get_prediction: 404 Not Found: prediction not found"
    assert envelope.result == [
        False,
        404,
        "Not Found",
        "prediction not found",
        "replicate.get_prediction",
        "api",
        "api_error",
        message,
        message,
    ]


def test_provider_error_works_where_strings_were_expected(run):
    """String methods and `..` work on error values, as on their message."""
    envelope = run(
        """
        local ok, e = pcall(app.integrations.replicate.get_prediction, {prediction_id = "x"})
        return e:find("404") ~= nil, "error: " .. e, e:upper():sub(1, 9)
        """
    )
    assert envelope.result == [
        True,
        "error: replicate.get_prediction: 404 Not Found: prediction not found",
        "REPLICATE",
    ]


def test_uncaught_provider_error_reports_its_type_and_call_line(run):
    """An uncaught provider error ends the run with its error_type and the caller's line."""
    envelope = run('local a = 1\nreturn app.integrations.replicate.get_prediction({prediction_id="x"})')
    assert envelope.status == "failed"
    assert envelope.error.type == "api"
    assert envelope.error.message == "replicate.get_prediction: 404 Not Found: prediction not found"
    assert envelope.error.line == 2


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("argument_error", "validation"),
        ("transport_error", "api"),
        ("configuration_error", "api"),
        ("api_error", "api"),
        ("some_new_error", "api"),
    ],
)
def test_provider_error_type_maps_onto_the_envelope_error_type(run, provider, error_type, expected):
    """The provider exception's error_type decides error.type when uncaught (and stays as kind)."""
    provider.set_result("get_prediction", StubError("nope", error_type=error_type))
    envelope = run('local p = app.integrations.replicate.get_prediction({prediction_id="x"})')
    assert envelope.error.type == expected
    assert envelope.error.message == "replicate.get_prediction: nope"
    caught = run('local ok, e = pcall(app.integrations.replicate.get_prediction, {prediction_id="x"}) return e.kind')
    assert caught.result == [error_type]


def test_untyped_provider_exception_is_an_internal_error_without_its_text(run, provider):
    """An exception without error_type becomes an internal error and hides its text."""
    provider.set_result("get_prediction", RuntimeError("secret token abc"))
    envelope = run('local p = app.integrations.replicate.get_prediction({prediction_id="x"})')
    assert envelope.error.type == "internal"
    assert "secret" not in envelope.error.message


def test_non_table_argument_is_a_validation_error(run, provider):
    """Calling with something other than one table is a validation error."""
    envelope = run('local p = app.integrations.replicate.get_prediction("abc")')
    assert envelope.error.type == "validation"
    assert "expects one table argument" in envelope.error.message
    assert envelope.error.line == 1
    assert provider.calls == []


def test_integration_calls_record_every_call(run):
    """Each call adds {path, operation, account, kind, status, http_status, duration_ms, error}."""
    envelope = run(
        """
        app.integrations.replicate.work.get_account()
        pcall(app.integrations.replicate.get_prediction, {prediction_id = "x"})
        """
    )
    ok, failed = envelope.integration_calls
    assert ok == {
        "path": "integrations.replicate.work.get_account",
        "operation": "replicate.get_authenticated_account",
        "account": "work",
        "kind": "read",
        "status": "ok",
        "http_status": 200,
        "duration_ms": 0.0,
        "error": None,
    }
    assert failed["status"] == "error"
    assert failed["http_status"] == 404
    assert failed["error"] == "replicate.get_prediction: 404 Not Found: prediction not found"


def test_on_call_receives_each_entry_as_it_happens(run, provider):
    """on_call gets each integration_calls entry before the next call is made."""
    seen: list[dict] = []
    calls_when_seen: list[int] = []

    def on_call(entry: dict) -> None:
        seen.append(entry)
        calls_when_seen.append(len(provider.calls))

    envelope = run(
        "app.integrations.replicate.get_account() app.integrations.replicate.list_predictions()",
        on_call=on_call,
    )
    assert seen == envelope.integration_calls
    assert calls_when_seen == [1, 2]


def test_call_duration_comes_from_the_injected_clock(run, provider, clock):
    """duration_ms measures the provider call with the injected clock."""

    def slow(args, account):
        clock.advance(1.5)
        return {"ok": True}

    provider.set_result("list_predictions", slow)
    envelope = run("app.integrations.replicate.list_predictions()")
    assert envelope.integration_calls[0]["duration_ms"] == 1500.0


def test_provider_gets_the_time_left_as_timeout(run, provider, clock):
    """The timeout passed to the provider is what is left of the wall clock."""
    run("sleep(10) app.integrations.replicate.get_account()", limits=small(wall_clock_seconds=60))
    assert provider.calls[0].timeout == pytest.approx(50.0)


def test_empty_table_follows_the_schema(run, provider):
    """An empty table becomes {} where the schema wants an object and [] where an array."""
    run(
        "app.integrations.replicate.create_prediction({input = {}, webhook_events_filter = {},"
        " metadata = {tags = {}, extra = {}}, other = {}})",
        allow_writes=True,
    )
    assert provider.calls[0].args == {
        "input": {},
        "webhook_events_filter": [],
        "metadata": {"tags": [], "extra": {}},
        "other": [],
    }


def test_markers_override_the_schema(run, provider):
    """json.object() and json.array() force the JSON shape of an empty table."""
    run(
        "app.integrations.replicate.create_prediction({input = json.array(), other = json.object()})",
        allow_writes=True,
    )
    assert provider.calls[0].args == {"input": [], "other": {}}


def test_json_null_sends_none(run, provider):
    """json.null sends JSON null (None), where nil would drop the key."""
    run(
        "app.integrations.replicate.create_prediction({version = json.null, input = {a = nil}})",
        allow_writes=True,
    )
    assert provider.calls[0].args == {"version": None, "input": {}}


def test_non_utf8_argument_strings_stay_bytes(run, provider):
    """Binary strings reach the provider as bytes (a file upload is bytes)."""
    run(
        'app.integrations.replicate.create_prediction({input = {content = "\\xff\\x00\\x01"}})',
        allow_writes=True,
    )
    assert provider.calls[0].args == {"input": {"content": b"\xff\x00\x01"}}


def test_unconvertible_arguments_are_a_validation_error(run, provider):
    """A function among the arguments is a catchable validation error; nothing is sent."""
    envelope = run(
        "local ok, e = pcall(app.integrations.replicate.get_prediction, {prediction_id = print})\n"
        "return e.type, e.message"
    )
    assert envelope.result == [
        "validation",
        "replicate.get_prediction: invalid arguments: cannot convert a function to JSON at $.prediction_id",
    ]
    assert provider.calls == []


def test_results_come_back_one_based_with_nulls_kept_in_arrays(run, provider):
    """Arrays are 1-based; null drops an object key but keeps its place in an array."""
    provider.set_result("list_predictions", {"results": [{"id": "a"}, None, {"id": "c"}], "next": None})
    envelope = run(
        """
        local r = app.integrations.replicate.list_predictions()
        return #r.results, r.results[1].id, r.results[2] == json.null, r.results[3].id, r.next
        """
    )
    assert envelope.result == [3, "a", True, "c", None]


def test_results_round_trip_unchanged(run, provider):
    """A provider result returned as is converts back to the same JSON, {} included."""
    value = {"input": {}, "output": [], "nested": {"list": [1, None, "x"]}, "n": 1.5}
    provider.set_result("list_predictions", value)
    envelope = run("return app.integrations.replicate.list_predictions()")
    assert envelope.result == [value]


def test_binary_response_body_is_a_lua_string_and_base64_in_json(run, provider):
    """A binary body reaches Lua as a string and is base64 (body_encoding) in the result."""
    provider.set_result("list_predictions", {"body": b"\x89PNG\xff", "content_type": "image/png"})
    envelope = run("local r = app.integrations.replicate.list_predictions()\nreturn #r.body, r.body:byte(1), r")
    assert envelope.result == [
        5,
        0x89,
        {"body": "iVBOR/8=", "body_encoding": "base64", "content_type": "image/png"},
    ]


def test_coroutines_can_call_the_bridge(run, provider):
    """Calls made inside user coroutines (resume and wrap) reach the provider and return."""
    envelope = run(
        """
        local co = coroutine.create(function(prefix)
          local who = app.integrations.replicate.get_account().username
          local more = coroutine.yield(prefix .. who)
          return more .. "!"
        end)
        local _, first = coroutine.resume(co, "hi ")
        local _, second = coroutine.resume(co, "bye")
        local gen = coroutine.wrap(function()
          for i = 1, 2 do
            coroutine.yield(app.integrations.replicate.get_account().username .. i)
          end
        end)
        local nested = coroutine.wrap(function()
          return coroutine.wrap(function()
            return app.integrations.replicate.get_account().username
          end)()
        end)
        return first, second, gen(), gen(), nested(), coroutine.status(co)
        """
    )
    assert envelope.result == ["hi alice", "bye!", "alice1", "alice2", "alice", "dead"]
    assert len(provider.calls) == 4


def test_provider_errors_inside_coroutines_are_catchable(run):
    """A provider error raised inside a coroutine comes back from coroutine.resume."""
    envelope = run(
        """
        local co = coroutine.create(function()
          return app.integrations.replicate.get_prediction({prediction_id = "x"})
        end)
        local ok, e = coroutine.resume(co)
        return ok, e.status
        """
    )
    assert envelope.result == [False, 404]


def test_bridge_inside_a_c_callback_is_a_clear_error(run):
    """A call from a callback that C calls (table.sort) fails with an explanation."""
    envelope = run("table.sort({1, 2}, function(a, b)\n  app.integrations.replicate.get_account() return a < b\nend)")
    assert envelope.status == "failed"
    assert "cannot run inside a callback called from C" in envelope.error.message


def test_app_integrations_is_read_only(run):
    """Scripts cannot replace integrations or functions."""
    envelope = run("app.integrations.replicate.get_account = function() return 1 end")
    assert envelope.error.message == "script:1: app.integrations is read-only"


def test_a_second_provider_is_reachable_without_sandbox_changes(run, provider):
    """Any Provider implementation is reachable under its own name."""
    from sandbox.testing import StubFunction, StubProvider

    other = StubProvider(StubFunction("ping", result="pong"), name="other")
    envelope = run("return app.integrations.other.ping()", providers=[provider, other])
    assert envelope.result == ["pong"]


def test_unknown_name_without_close_matches_lists_the_accounts(run):
    """With nothing close, the error names the accounts and where the functions are listed."""
    envelope = run("return app.integrations.replicate.zzz.get_account()")
    assert envelope.error.type == "validation"
    assert envelope.error.message == (
        "unknown function or account app.integrations.replicate.zzz; "
        "accounts: default, work; functions: see docs.read('replicate')"
    )
