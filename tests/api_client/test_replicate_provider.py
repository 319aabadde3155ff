"""ReplicateProvider: the sandbox's Provider protocol, with docs from the same catalog."""

from __future__ import annotations

import dataclasses
import re

import pytest

from api_client import (
    ArgumentError,
    CallOutcome,
    ConfigurationError,
    FunctionSpec,
    ReplicateProvider,
    accounts_from_env,
)


def specs_by_name(provider):
    return {name: spec for spec in provider.functions() for name in spec.names}


def operation_specs(provider):
    return provider.functions()[:37]


def test_there_is_one_function_per_operation_then_the_helpers(provider, catalog):
    """functions() has 37 operation specs, named long, short, slug, deduplicated, long
    first, then the four helpers (name and replicate_<name>)."""
    specs = operation_specs(provider)
    assert len(specs) == 37
    helpers = provider.functions()[37:]
    assert [h.names for h in helpers] == [
        ("run", "replicate_run"),
        ("wait", "replicate_wait"),
        ("paginate", "replicate_paginate"),
        ("verify_webhook", "replicate_verify_webhook"),
    ]
    assert [h.kind for h in helpers] == ["write", "read", "read", "read"]
    for spec, operation in zip(specs, catalog, strict=True):
        assert spec.names == operation.names
        assert spec.names[0] == operation.long_name == spec.name
        assert spec.title == operation.summary and spec.kind == operation.kind
        expected = len({operation.long_name, operation.short_name, operation.slug})
        assert len(spec.names) == expected
    assert len(specs_by_name(provider)) == sum(len(s.names) for s in provider.functions())
    assert sum(len(s.names) == 3 for s in specs) == 12


def test_specs_have_the_sandbox_field_names():
    """The look-alike value objects carry exactly the sandbox's field names."""
    assert [f.name for f in dataclasses.fields(FunctionSpec)] == [
        "names", "title", "kind", "args_schema", "doc", "example", "creates",
    ]  # fmt: skip
    assert [f.name for f in dataclasses.fields(CallOutcome)] == ["value", "http_status", "extra"]


def test_provider_satisfies_the_sandbox_protocol_when_available(provider):
    """Where sandbox/_provider.py exists, ReplicateProvider is a structural Provider."""
    sandbox_provider = pytest.importorskip("sandbox._provider")
    assert isinstance(provider, sandbox_provider.Provider)
    sandbox_fields = [f.name for f in dataclasses.fields(sandbox_provider.FunctionSpec)]
    assert sandbox_fields == [f.name for f in dataclasses.fields(FunctionSpec)]


def test_every_doc_page_lists_the_parameters_it_has(provider, catalog):
    """A page names every parameter and body field; "No parameters" never appears."""
    for spec, operation in zip(operation_specs(provider), catalog, strict=True):
        assert "No parameters" not in spec.doc
        for parameter in operation.parameters:
            assert re.search(rf"\| {re.escape(parameter.name)}\b", spec.doc), (
                operation.short_name,
                parameter.name,
            )
        if operation.body is not None:
            for field in operation.body.fields:
                assert f"| {field} |" in spec.doc
        for name in operation.names:
            assert name in spec.doc
        assert f"{operation.method} /v1{operation.path}" in spec.doc
        assert spec.example in spec.doc


def test_doc_page_of_get_prediction(provider):
    """The page has title, names, kind, a parameters table, description and example."""
    doc = specs_by_name(provider)["get_prediction"].doc
    assert doc.startswith("# replicate.get_prediction — Get a prediction\n")
    assert "Operation: read (GET /v1/predictions/{prediction_id})" in doc
    assert "| prediction_id | path | string | yes |" in doc
    assert "Get the current state of a prediction." in doc
    assert "curl" not in doc.lower()
    example = 'get_prediction({ prediction_id = "prediction-id" })'
    assert f"local result = app.integrations.replicate.{example}" in doc


def test_operations_without_parameters_say_so_plainly(provider):
    """get_account's page says it takes no parameters."""
    doc = specs_by_name(provider)["get_account"].doc
    assert "This function takes no parameters: get_account({})." in doc


def test_examples_use_required_arguments(provider):
    """Examples fill in required parameters and body fields with runnable values."""
    specs = specs_by_name(provider)
    assert 'version = "replicate/hello-world:' in specs["create_prediction"].example
    assert 'input = { text = "Alice" }' in specs["create_prediction"].example
    assert specs["search_models"].example.endswith('search_models({ body = "image generation" })')
    assert specs["get_account"].example.endswith("get_account({})")


def test_overview_lists_name_forms_accounts_and_every_function(provider, catalog):
    """The namespace page explains the conventions and has one line per function."""
    overview = provider.overview_doc()
    assert overview.startswith("# Replicate Lua Reference")
    assert "Namespace: app.integrations.replicate" in overview
    assert "Accounts: default, work" in overview
    for operation in catalog:
        line = next(line for line in overview.splitlines() if line.startswith(operation.short_name + " "))
        assert operation.long_name in line and operation.kind in line and operation.summary in line


def test_accounts_always_start_with_default(transport):
    """default is listed first even when only named accounts were given."""
    with ReplicateProvider(accounts_from_env({"REPLICATE_API_TOKEN_ZED": "t"})) as provider:
        assert provider.accounts() == ("default", "zed")


@pytest.mark.parametrize("name", ["get_authenticated_account", "get_account", "replicate_get_account"])
def test_call_accepts_every_name_form(provider, name):
    """Calling by any name returns the value and HTTP status."""
    outcome = provider.call(name, "default", {})
    assert outcome.value["username"] == "luaq-sim"
    assert outcome.http_status == 200


def test_named_accounts_use_their_own_token(provider):
    """The work account acts as its own simulator user."""
    assert provider.call("get_account", "work", {}).value["username"] == "luaq-sim-work"


def test_call_runs_a_prediction_and_passes_the_timeout(provider, clock):
    """create then get through the provider; Prefer: wait honours the timeout."""
    created = provider.call(
        "create_prediction",
        "default",
        {
            "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
            "input": {"text": "Ann"},
            "prefer": "wait",
        },
        timeout=30,
    )
    assert created.http_status == 201
    assert created.value["output"] == "hello Ann"
    fetched = provider.call("get_prediction", "default", {"prediction_id": created.value["id"]})
    assert fetched.value["status"] == "succeeded"


def test_unknown_account_or_function_suggests_the_nearest(provider):
    """Unknown names are ArgumentErrors that name the nearest valid one."""
    with pytest.raises(ArgumentError, match=r"unknown account 'wrok'.*did you mean 'work'"):
        provider.call("get_account", "wrok", {})
    with pytest.raises(ArgumentError, match="did you mean 'get_account'"):
        provider.call("get_acount", "default", {})


def test_no_token_is_a_configuration_error(transport):
    """A provider built from an empty environment explains how to configure a token."""
    with (
        ReplicateProvider(accounts_from_env({}), transport=transport) as provider,
        pytest.raises(ConfigurationError, match="REPLICATE_API_TOKEN"),
    ):
        provider.call("get_account", "default", {})


def test_the_limiter_is_handed_to_every_client(accounts, transport):
    """A limiter given to the provider sees calls from each account."""
    calls = []

    class Limiter:
        def acquire(self, account, bucket, *, timeout):
            calls.append((account, bucket))

    with ReplicateProvider(accounts, transport=transport, limiter=Limiter()) as provider:
        provider.call("get_account", "default", {})
        flux = {"model_owner": "black-forest-labs", "model_name": "flux-schnell"}
        provider.call("create_model_prediction", "work", {**flux, "input": {"prompt": "x"}})
    assert calls == [("default", "other"), ("work", "create")]


def test_provider_repr_shows_no_token(provider):
    """The provider's repr lists account names only."""
    assert repr(provider) == "ReplicateProvider(accounts=['default', 'work'])"
