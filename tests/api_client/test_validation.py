"""Mapping the Lua table argument onto path, query, headers and body, validated first."""

from __future__ import annotations

import pytest

from api_client import ArgumentError
from api_client._validation import NO_BODY, prepare_request


def prepare(catalog, name, args):
    return prepare_request(catalog[name], args)


def test_path_parameters_fill_the_path(catalog):
    """Path parameters are taken by name and substituted into the path."""
    request = prepare(catalog, "get_model", {"model_owner": "replicate", "model_name": "hello"})
    assert request.path == "/models/replicate/hello"
    assert request.query == {} and request.headers == {} and request.body is NO_BODY


def test_path_values_are_url_encoded(catalog):
    """A path value with a slash, space or question mark cannot change the path."""
    request = prepare(catalog, "get_prediction", {"prediction_id": "a/b c?d"})
    assert request.path == "/predictions/a%2Fb%20c%3Fd"


def test_missing_required_parameter_names_it(catalog):
    """A missing required path parameter is an ArgumentError naming it."""
    with pytest.raises(ArgumentError) as caught:
        prepare(catalog, "get_prediction", {})
    assert str(caught.value) == "missing required argument 'prediction_id' for replicate.get_prediction"
    assert (caught.value.argument, caught.value.operation) == ("prediction_id", "get_prediction")


def test_unknown_argument_suggests_the_nearest_name(catalog):
    """A misspelt argument is rejected with the nearest valid name."""
    with pytest.raises(ArgumentError) as caught:
        prepare(catalog, "get_prediction", {"prediction_id": "x", "prediction_idd": "y"})
    assert str(caught.value) == (
        "unknown argument 'prediction_idd' for replicate.get_prediction; did you mean 'prediction_id'?"
    )


def test_operation_without_arguments_says_so(catalog):
    """An argument to a function that takes none says it takes none."""
    with pytest.raises(ArgumentError, match="takes no arguments"):
        prepare(catalog, "get_account", {"verbose": True})


def test_unknown_body_field_is_rejected_where_the_schema_forbids_extras(catalog):
    """The prediction request has additionalProperties false, so a typo is caught."""
    with pytest.raises(ArgumentError, match=r"unknown argument 'inputs'.*did you mean 'input'"):
        prepare(catalog, "create_prediction", {"version": "v", "inputs": {}})


def test_unknown_field_inside_an_explicit_body_is_rejected(catalog):
    """The same check applies inside body = { ... }, naming the field by its path."""
    with pytest.raises(ArgumentError, match=r"unknown argument 'body.imput'.*'body.input'"):
        prepare(catalog, "create_prediction", {"body": {"version": "v", "imput": {}}})


def test_missing_required_body_field_names_it(catalog):
    """A required body field that is absent is named, whichever way the body was given."""
    with pytest.raises(ArgumentError, match="missing required argument 'input'"):
        prepare(catalog, "create_prediction", {"version": "v"})
    with pytest.raises(ArgumentError, match=r"missing required argument 'body.version'"):
        prepare(catalog, "create_prediction", {"body": {"input": {}}})


def test_wrong_type_names_the_expected_type(catalog):
    """A value of the wrong type is reported with the type the schema expects."""
    with pytest.raises(ArgumentError) as caught:
        prepare(catalog, "create_prediction", {"version": "v", "input": "a cat"})
    assert str(caught.value) == (
        "argument 'input' for replicate.create_prediction must be a table with named fields (object), got a string"
    )
    with pytest.raises(ArgumentError, match=r"'limit' .* must be an integer, got a string"):
        prepare(catalog, "search", {"query": "cats", "limit": "ten"})


def test_enum_and_range_constraints_are_checked(catalog):
    """Enums, minimum and maximum come from the schema."""
    with pytest.raises(ArgumentError, match="must be one of 'model_created_at'"):
        prepare(catalog, "list_models", {"sort_by": "name"})
    with pytest.raises(ArgumentError, match="must be at most 50, got 51"):
        prepare(catalog, "search", {"query": "cats", "limit": 51})
    with pytest.raises(ArgumentError, match=r"webhook_events_filter\[2\].*must be one of"):
        prepare(
            catalog,
            "create_prediction",
            {"version": "v", "input": {}, "webhook_events_filter": ["start", "finish"]},
        )


def test_query_parameters_are_sent_as_text(catalog):
    """Query values become strings; an integral Lua float is an integer."""
    request = prepare(catalog, "search", {"query": "cats", "limit": 5.0})
    assert request.query == {"query": "cats", "limit": "5"}


@pytest.mark.parametrize("spelling", ["Cancel-After", "cancel_after", "cancel-after"])
def test_headers_accept_three_spellings_and_never_reach_the_body(catalog, spelling):
    """Cancel-After by exact, snake_case or lower-case name becomes the header only."""
    args = {"version": "v", "input": {"text": "hi"}, spelling: "30s", "prefer": "wait=5"}
    request = prepare(catalog, "create_prediction", args)
    assert request.headers == {"Cancel-After": "30s", "Prefer": "wait=5"}
    assert request.body == {"version": "v", "input": {"text": "hi"}}


def test_a_header_given_twice_is_an_error(catalog):
    """Two spellings of one header are ambiguous, so neither is guessed."""
    with pytest.raises(ArgumentError, match="given twice"):
        prepare(
            catalog,
            "create_prediction",
            {"version": "v", "input": {}, "Prefer": "wait", "prefer": "wait=5"},
        )


def test_header_values_are_validated(catalog):
    """Prefer must match the schema's pattern; a Lua number for Cancel-After is seconds."""
    with pytest.raises(ArgumentError, match=r"'Prefer' .* must match"):
        prepare(catalog, "create_prediction", {"version": "v", "input": {}, "Prefer": "later"})
    request = prepare(catalog, "create_prediction", {"version": "v", "input": {}, "cancel_after": 30})
    assert request.headers == {"Cancel-After": "30"}


def test_body_may_be_given_explicitly(catalog):
    """body = { ... } is the request body, next to path parameters."""
    request = prepare(
        catalog,
        "create_model_prediction",
        {"model_owner": "o", "model_name": "n", "body": {"input": {"prompt": "p"}}},
    )
    assert request.path == "/models/o/n/predictions"
    assert request.body == {"input": {"prompt": "p"}}


def test_extra_fields_next_to_an_explicit_body_are_rejected(catalog):
    """With body = { ... } given, a stray top-level field is an unknown argument."""
    with pytest.raises(ArgumentError, match="unknown argument 'webhook'"):
        prepare(catalog, "create_prediction", {"body": {"version": "v", "input": {}}, "webhook": "x"})


def test_open_body_schemas_keep_extra_fields(catalog):
    """Bodies without additionalProperties false pass unknown fields through."""
    request = prepare(catalog, "update_model", {"model_owner": "o", "model_name": "n", "x": 1})
    assert request.body == {"x": 1}


def test_an_empty_list_becomes_an_object_where_the_schema_wants_one(catalog):
    """Lua's empty table, converted as [], is sent as {} for an object field."""
    request = prepare(catalog, "create_prediction", {"version": "v", "input": []})
    assert request.body["input"] == {}


def test_optional_body_left_out_sends_no_body(catalog):
    """update_deployment with no fields sends no body at all."""
    request = prepare(catalog, "update_deployment", {"deployment_owner": "o", "deployment_name": "n"})
    assert request.body is NO_BODY


def test_search_models_takes_a_text_body(catalog):
    """search_models sends body = "..." as its text/plain body."""
    request = prepare(catalog, "search_models", {"body": "image generation"})
    assert request.body == "image generation"
    assert catalog["search_models"].body.content_type == "text/plain"


def test_search_models_rejects_a_table_body_or_none(catalog):
    """A non-string body, a missing body and loose fields are all ArgumentErrors."""
    with pytest.raises(ArgumentError, match=r"'body' .* must be a string, got a table"):
        prepare(catalog, "search_models", {"body": {"query": "x"}})
    with pytest.raises(ArgumentError, match="missing required argument 'body'"):
        prepare(catalog, "search_models", {})
    with pytest.raises(ArgumentError, match="unknown argument 'query'"):
        prepare(catalog, "search_models", {"query": "x"})


def test_operations_without_a_body_reject_one(catalog):
    """A body for an operation that has none is an unknown argument."""
    with pytest.raises(ArgumentError, match="unknown argument 'body'"):
        prepare(catalog, "get_prediction", {"prediction_id": "p", "body": {}})


def test_cursor_accepts_a_page_url(catalog):
    """cursor = page.next takes the cursor out of the next URL."""
    url = "https://api.replicate.com/v1/predictions?cursor=cD0yMDIz&x=1"
    assert prepare(catalog, "list_predictions", {"cursor": url}).query == {"cursor": "cD0yMDIz"}
    assert prepare(catalog, "list_predictions", {"cursor": "abc"}).query == {"cursor": "abc"}


def test_lua_strings_given_as_bytes_are_text(catalog):
    """A UTF-8 byte string is accepted where the schema wants a string."""
    request = prepare(catalog, "get_prediction", {"prediction_id": "caf\u00e9".encode()})
    assert request.path == "/predictions/caf%C3%A9"
    with pytest.raises(ArgumentError, match="must be UTF-8 text"):
        prepare(catalog, "get_prediction", {"prediction_id": b"\xff\xfe"})


def test_byte_string_keys_are_names(catalog):
    """Keys that arrive as Lua byte strings are matched like text keys."""
    request = prepare(catalog, "create_prediction", {b"version": "v", b"input": {b"text": b"hi"}})
    assert request.body == {"version": "v", "input": {"text": b"hi"}}


def test_positional_arguments_are_rejected(catalog):
    """A Lua list instead of named fields is explained, not silently dropped."""
    with pytest.raises(ArgumentError, match="named arguments"):
        prepare(catalog, "get_prediction", {1: "prediction-id"})


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_dot_segments_cannot_escape_the_operations_path(value):
    """A path parameter of '', '.' or '..' is refused: it would make the request reach another endpoint."""
    from api_client import ArgumentError, load_catalog
    from api_client._validation import prepare_request

    with pytest.raises(ArgumentError, match="model_owner"):
        prepare_request(load_catalog().resolve("get_model"), {"model_owner": value, "model_name": "x"})
