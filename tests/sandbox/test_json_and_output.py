"""json.*, print and dump: one conversion between Lua and JSON, markers included."""

from __future__ import annotations

import json

import pytest


def test_encode_is_compact_and_decode_reads_it_back(run):
    """json.encode gives compact JSON with sorted keys; json.decode reads it back."""
    envelope = run(
        """
        local s = json.encode({b = 1, a = {1, 2, "x"}, c = true})
        local t = json.decode(s)
        return s, t.a[3], t.c
        """
    )
    assert envelope.result == ['{"a":[1,2,"x"],"b":1,"c":true}', "x", True]


def test_encode_pretty_uses_two_spaces(run):
    """{pretty=true} indents with two spaces."""
    assert run("return json.encode({a = {1}}, {pretty = true})").result == ['{\n  "a": [\n    1\n  ]\n}']


def test_markers_and_null_encode_as_json(run):
    """json.object() is {}, json.array() is [], json.null is null, unmarked {} is []."""
    envelope = run("return json.encode({o = json.object(), a = json.array(), n = json.null, e = {}})")
    assert envelope.result == ['{"a":[],"e":[],"n":null,"o":{}}']


def test_decoded_values_round_trip_with_their_markers(run):
    """Decoded objects and arrays keep their shape through encode, empty ones included."""
    text = '{"a":[],"b":{},"c":[1,null,{"d":{}}],"e":"\\u00e9"}'
    envelope = run(f"return json.encode(json.decode({json.dumps(text)}))")
    assert json.loads(envelope.result[0]) == json.loads(text)


def test_decoded_null_drops_object_keys_and_keeps_array_positions(run):
    """null in an object leaves the key out; in an array it is json.null."""
    envelope = run(
        """
        local t = json.decode('{"a": null, "list": [1, null, 3]}')
        return t.a == nil, #t.list, t.list[2] == json.null, json.decode("null")
        """
    )
    assert envelope.result == [True, 3, True, None]


def test_marked_tables_stay_marked_when_filled(run):
    """A table from json.object() with integer keys still encodes as an object."""
    envelope = run(
        "local o = json.object() o[1] = 'x' local a = json.array({}) a[2] = 'y'\nreturn json.encode(o), json.encode(a)"
    )
    assert envelope.result == ['{"1":"x"}', '[null,"y"]']


def test_markers_are_invisible_to_getmetatable(run):
    """getmetatable shows no marker, so scripts cannot alter the markers."""
    envelope = run("return getmetatable(json.object()), getmetatable(json.decode('[]'))")
    assert envelope.result == [None, None]


def test_tables_with_holes_or_string_keys_become_objects(run):
    """Only 1..n sequences are arrays; number keys of other tables are stringified."""
    envelope = run("return {[1] = 'a', [3] = 'c'}, {1, 2, x = 3}, {[1.5] = true}")
    assert envelope.result == [{"1": "a", "3": "c"}, {"1": 1, "2": 2, "x": 3}, {"1.5": True}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{f = print}", "json.encode: cannot convert a function to JSON at $.f"),
        ("{0/0}", "json.encode: cannot convert NaN or infinity to JSON at $[1]"),
        ("{x = 1/0}", "json.encode: cannot convert NaN or infinity to JSON at $.x"),
        ("(coroutine.running())", "json.encode: cannot convert a thread to JSON"),
    ],
)
def test_encode_errors_are_catchable_and_name_the_place(run, value, message):
    """Values with no JSON form raise a catchable error naming where they are."""
    envelope = run(f"return pcall(json.encode, {value})")
    assert envelope.result == [False, message]


def test_encode_rejects_cycles_and_depth(run):
    """Cycles and nesting deeper than 200 are errors, not hangs."""
    cycle = run("local t = {} t[1] = t return pcall(json.encode, t)")
    assert "contains itself" in cycle.result[1]
    deep = run("local t = {} local c = t for i = 1, 300 do c.x = {} c = c.x end\nreturn pcall(json.encode, t)")
    assert "deeper than 200" in deep.result[1]


def test_encode_does_not_run_metamethods(run):
    """Encoding reads tables raw: __index, __pairs and __len are never called."""
    envelope = run(
        """
        local spin = function() while true do end end
        local mt = {__index = spin, __pairs = spin, __len = spin, __tostring = spin}
        local t = setmetatable({a = 1}, mt)
        return json.encode(t)
        """
    )
    assert envelope.result == ['{"a":1}']


def test_decode_errors_are_catchable(run):
    """Malformed JSON, NaN and nesting past 200 levels are catchable errors."""
    envelope = run(
        """
        local a = select(2, pcall(json.decode, "{bad"))
        local b = select(2, pcall(json.decode, "[NaN]"))
        local c = select(2, pcall(json.decode, string.rep("[", 250) .. string.rep("]", 250)))
        local d = select(2, pcall(json.decode, 42))
        return a, b, c, d
        """
    )
    a, b, c, d = envelope.result
    assert a.startswith("json.decode: Expecting property name")
    assert "NaN is not valid JSON" in b
    assert "deeper than 200" in c
    assert "json.decode expects a string, got number" in d


def test_non_utf8_body_is_base64_with_body_encoding(run):
    """A non-UTF-8 string under `body` becomes base64 with body_encoding = "base64"."""
    envelope = run('return {body = "\\xff\\xfe", name = "\\xff"}')
    assert envelope.result == [{"body": "//4=", "body_encoding": "base64", "name": "\ufffd"}]


def test_print_joins_with_tabs_and_renders_tables_as_compact_json(run):
    """print tab-joins its arguments; tables are compact JSON, functions <function>."""
    envelope = run('print(1, "a", nil, true, 2.5, {1, {x = print}}, json.null)')
    assert envelope.output == '1\ta\tnil\ttrue\t2.5\t[1,{"x":"<function>"}]\tnull'


def test_print_uses_tostring_metamethods_and_survives_cycles(run):
    """Tables with __tostring print through it; cycles print as <cycle>."""
    envelope = run(
        """
        print(setmetatable({}, {__tostring = function() return "custom" end}))
        local t = {} t.self = t
        print(t)
        """
    )
    assert envelope.output == 'custom\n{"self":"<cycle>"}'


def test_dump_prints_pretty_json_and_returns_its_argument(run):
    """dump(v) prints v as 2-space JSON and returns v."""
    envelope = run('local v = dump({a = {1, 2}}) return v.a[2], dump("s")')
    assert envelope.output == '{\n  "a": [\n    1,\n    2\n  ]\n}\n"s"'
    assert envelope.result == [2, "s"]


def test_on_output_receives_each_line_while_the_script_runs(run, provider):
    """on_output gets each entry at once, before later calls of the same script."""
    events: list[str] = []
    provider.set_result("list_predictions", lambda args, account: events.append("call") or {"ok": True})
    run(
        'print("first") app.integrations.replicate.list_predictions() print("second")',
        on_output=lambda line: events.append(f"out:{line}"),
    )
    assert events == ["out:first", "call", "out:second"]


def test_job_args_and_id_are_visible(run):
    """job.args is the converted args object and job.id the job id."""
    envelope = run(
        "return job.id, job.args.name, job.args.items[2], json.encode(job.args.empty)",
        job_id="job-7",
        args={"name": "n", "items": [1, 2], "empty": {}},
    )
    assert envelope.result == ["job-7", "n", 2, "{}"]


def test_job_args_default_to_an_empty_object(run):
    """Without args, job.args is an empty object."""
    assert run("return json.encode(job.args), job.id").result == ["{}", None]
