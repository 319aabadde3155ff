"""The operation catalog: 37 rows from openapi.json, their names and argument schemas."""

from __future__ import annotations

import dataclasses
import json

import pytest

from api_client import ArgumentError, Catalog
from api_client._names import derive_long_name

# reference/names.md: long name, short name, slug, method, path, kind.
NAMES = [
    (
        "cancel_prediction",
        "cancel_prediction",
        "replicate_cancel_prediction",
        "POST",
        "/predictions/{prediction_id}/cancel",
        "write",
    ),
    (
        "cancel_training",
        "cancel_training",
        "replicate_cancel_training",
        "POST",
        "/trainings/{training_id}/cancel",
        "write",
    ),
    (
        "create_deployment",
        "create_deployment",
        "replicate_create_deployment",
        "POST",
        "/deployments",
        "write",
    ),
    (
        "create_prediction_using_deployment",
        "create_deployment_prediction",
        "replicate_create_deployment_prediction",
        "POST",
        "/deployments/{deployment_owner}/{deployment_name}/predictions",
        "write",
    ),
    ("create_file", "create_file", "replicate_create_file", "POST", "/files", "write"),
    ("create_model", "create_model", "replicate_create_model", "POST", "/models", "write"),
    (
        "create_prediction_using_official_model",
        "create_model_prediction",
        "replicate_create_model_prediction",
        "POST",
        "/models/{model_owner}/{model_name}/predictions",
        "write",
    ),
    (
        "create_prediction",
        "create_prediction",
        "replicate_create_prediction",
        "POST",
        "/predictions",
        "write",
    ),
    (
        "create_training",
        "create_training",
        "replicate_create_training",
        "POST",
        "/models/{model_owner}/{model_name}/versions/{version_id}/trainings",
        "write",
    ),
    (
        "delete_deployment",
        "delete_deployment",
        "replicate_delete_deployment",
        "DELETE",
        "/deployments/{deployment_owner}/{deployment_name}",
        "write",
    ),
    ("delete_file", "delete_file", "replicate_delete_file", "DELETE", "/files/{file_id}", "write"),
    (
        "delete_model",
        "delete_model",
        "replicate_delete_model",
        "DELETE",
        "/models/{model_owner}/{model_name}",
        "write",
    ),
    (
        "delete_model_version",
        "delete_model_version",
        "replicate_delete_model_version",
        "DELETE",
        "/models/{model_owner}/{model_name}/versions/{version_id}",
        "write",
    ),
    (
        "download_file",
        "download_file",
        "replicate_download_file",
        "GET",
        "/files/{file_id}/download",
        "read",
    ),
    (
        "get_authenticated_account",
        "get_account",
        "replicate_get_account",
        "GET",
        "/account",
        "read",
    ),
    (
        "get_collection_models",
        "get_collection",
        "replicate_get_collection",
        "GET",
        "/collections/{collection_slug}",
        "read",
    ),
    (
        "get_signing_secret_default_webhook",
        "get_default_webhook_secret",
        "replicate_get_default_webhook_secret",
        "GET",
        "/webhooks/default/secret",
        "read",
    ),
    (
        "get_deployment",
        "get_deployment",
        "replicate_get_deployment",
        "GET",
        "/deployments/{deployment_owner}/{deployment_name}",
        "read",
    ),
    ("get_file", "get_file", "replicate_get_file", "GET", "/files/{file_id}", "read"),
    (
        "get_model",
        "get_model",
        "replicate_get_model",
        "GET",
        "/models/{model_owner}/{model_name}",
        "read",
    ),
    (
        "get_model_readme",
        "get_model_readme",
        "replicate_get_model_readme",
        "GET",
        "/models/{model_owner}/{model_name}/readme",
        "read",
    ),
    (
        "get_model_version",
        "get_model_version",
        "replicate_get_model_version",
        "GET",
        "/models/{model_owner}/{model_name}/versions/{version_id}",
        "read",
    ),
    (
        "get_prediction",
        "get_prediction",
        "replicate_get_prediction",
        "GET",
        "/predictions/{prediction_id}",
        "read",
    ),
    (
        "get_training",
        "get_training",
        "replicate_get_training",
        "GET",
        "/trainings/{training_id}",
        "read",
    ),
    (
        "list_collections_models",
        "list_collections",
        "replicate_list_collections",
        "GET",
        "/collections",
        "read",
    ),
    (
        "list_deployments",
        "list_deployments",
        "replicate_list_deployments",
        "GET",
        "/deployments",
        "read",
    ),
    ("list_files", "list_files", "replicate_list_files", "GET", "/files", "read"),
    (
        "list_available_hardware_models",
        "list_hardware",
        "replicate_list_hardware",
        "GET",
        "/hardware",
        "read",
    ),
    (
        "list_examples_model",
        "list_model_examples",
        "replicate_list_model_examples",
        "GET",
        "/models/{model_owner}/{model_name}/examples",
        "read",
    ),
    (
        "list_model_versions",
        "list_model_versions",
        "replicate_list_model_versions",
        "GET",
        "/models/{model_owner}/{model_name}/versions",
        "read",
    ),
    ("list_public_models", "list_models", "replicate_list_models", "GET", "/models", "read"),
    (
        "list_predictions",
        "list_predictions",
        "replicate_list_predictions",
        "GET",
        "/predictions",
        "read",
    ),
    ("list_trainings", "list_trainings", "replicate_list_trainings", "GET", "/trainings", "read"),
    (
        "search_models_collections_and_docs_beta",
        "search",
        "replicate_search",
        "GET",
        "/search",
        "read",
    ),
    (
        "search_public_models",
        "search_models",
        "replicate_search_models",
        "QUERY",
        "/models",
        "read",
    ),
    (
        "update_deployment",
        "update_deployment",
        "replicate_update_deployment",
        "PATCH",
        "/deployments/{deployment_owner}/{deployment_name}",
        "write",
    ),
    (
        "update_metadata_model",
        "update_model",
        "replicate_update_model",
        "PATCH",
        "/models/{model_owner}/{model_name}",
        "write",
    ),
]


def test_catalog_has_one_row_per_operation(catalog):
    """The vendored schema yields exactly 37 operations, as names.md lists."""
    assert len(catalog) == 37 == len(NAMES)
    assert {(op.method, op.path) for op in catalog} == {(r[3], r[4]) for r in NAMES}


@pytest.mark.parametrize("row", NAMES, ids=[r[1] for r in NAMES])
def test_every_name_resolves_to_its_operation(catalog, row):
    """Long name, short name and slug each resolve to the method and path of names.md."""
    long_name, short_name, slug, method, path, kind = row
    for name in (long_name, short_name, slug):
        operation = catalog.get(name)
        assert operation is not None, name
        assert (operation.method, operation.path, operation.kind) == (method, path, kind)
    operation = catalog[short_name]
    assert (operation.long_name, operation.short_name, operation.slug) == (
        long_name,
        short_name,
        slug,
    )


@pytest.mark.parametrize("row", NAMES, ids=[r[0] for r in NAMES])
def test_long_name_derivation_reproduces_the_reference(catalog, row):
    """The long name derived from each summary is exactly the one names.md gives."""
    assert derive_long_name(catalog[row[1]].summary) == row[0]


def test_derivation_drops_stop_words_possessives_and_app_words():
    """Stop words, a possessive 's and words around the app name all disappear."""
    assert derive_long_name("Get a model's README") == "get_model_readme"
    assert derive_long_name("Get the signing secret for the default webhook") == ("get_signing_secret_default_webhook")
    assert derive_long_name("List Replicate models on a replicated cluster") == ("list_models_cluster")


def test_names_are_deduplicated_long_name_first(catalog):
    """An operation whose long and short names agree lists each name once, long first."""
    assert catalog["get_prediction"].names == ("get_prediction", "replicate_get_prediction")
    assert catalog["get_account"].names == (
        "get_authenticated_account",
        "get_account",
        "replicate_get_account",
    )


def test_operation_ids_also_resolve(catalog):
    """An operationId such as predictions.get resolves like a Lua name."""
    assert catalog.get("predictions.get") is catalog["get_prediction"]
    assert catalog.get("no_such_function") is None


def test_catalog_rejects_a_name_shared_by_two_operations(catalog):
    """Building a catalog where two operations share a name is an error, not an overwrite."""
    clash = dataclasses.replace(catalog["get_file"], operation_id="files.get2", long_name="get_prediction")
    with pytest.raises(ValueError, match="get_prediction"):
        Catalog([catalog["get_prediction"], clash])


def test_unknown_function_names_get_suggestions(catalog):
    """suggest() finds near misses and resolve() puts them in its error."""
    assert "get_prediction" in catalog.suggest("get_predictoin")
    with pytest.raises(ArgumentError, match="did you mean 'get_prediction'"):
        catalog.resolve("get_predictoin")


def test_read_and_write_follow_the_method(catalog):
    """GET and QUERY operations are reads; every other method is a write."""
    for operation in catalog:
        expected = "read" if operation.method in ("GET", "QUERY") else "write"
        assert operation.kind == expected


def test_prediction_and_training_creation_use_the_create_bucket(catalog):
    """Only the four prediction/training-creating operations count as "create"."""
    creating = {op.short_name for op in catalog if op.rate_bucket == "create"}
    assert creating == {
        "create_prediction",
        "create_model_prediction",
        "create_deployment_prediction",
        "create_training",
    }


def test_parameters_and_bodies_are_parsed_with_refs_resolved(catalog):
    """Header parameters come from $ref components and no $ref is left anywhere."""
    create = catalog["create_prediction"]
    assert [p.name for p in create.header_params] == ["Prefer", "Cancel-After"]
    assert create.body.content_type == "application/json"
    assert create.body.schema["additionalProperties"] is False
    assert set(create.body.required_fields) == {"version", "input"}
    download = catalog["download_file"]
    assert [(p.name, p.location, p.required) for p in download.parameters] == [
        ("file_id", "path", True),
        ("owner", "query", True),
        ("expiry", "query", True),
        ("signature", "query", True),
    ]
    for operation in catalog:
        assert "$ref" not in json.dumps(dataclasses.asdict(operation))


def test_args_schema_of_a_path_parameter_operation(catalog):
    """get_prediction takes one required string, prediction_id."""
    schema = catalog["get_prediction"].args_schema
    assert schema["type"] == "object"
    assert schema["properties"]["prediction_id"]["type"] == "string"
    assert schema["required"] == ["prediction_id"]


def test_args_schema_of_a_json_body_operation(catalog):
    """Body fields appear at the top level and as body; headers under every spelling; the
    prediction body is closed, so the argument table is too."""
    schema = catalog["create_model_prediction"].args_schema
    properties = schema["properties"]
    assert {"model_owner", "model_name", "Prefer", "Cancel-After", "input", "body"} <= set(properties)
    assert {"prefer", "cancel_after", "cancel-after"} <= set(properties)
    assert schema["additionalProperties"] is False
    assert properties["body"]["additionalProperties"] is False
    assert properties["input"]["type"] == "object"
    assert properties["webhook_events_filter"]["type"] == "array"
    assert properties["body"]["type"] == "object"
    assert schema["required"] == ["model_owner", "model_name"]


def test_args_schema_of_text_and_multipart_bodies(catalog):
    """search_models takes a string body; create_file an object of content and metadata."""
    assert catalog["search_models"].args_schema["properties"]["body"]["type"] == "string"
    upload = catalog["create_file"].args_schema["properties"]
    assert upload["body"]["type"] == "object"
    assert set(upload["body"]["properties"]) == {"content", "filename", "type", "metadata"}
    assert upload["content"]["type"] == "string"
    assert upload["metadata"]["type"] == "object"


def test_paginated_operations_take_a_cursor(catalog):
    """Every operation answering a page accepts an optional cursor; others do not."""
    paginated = {op.short_name for op in catalog if op.paginated}
    assert {"list_predictions", "list_models", "search_models", "list_files"} <= paginated
    assert "list_hardware" not in paginated
    for operation in catalog:
        has_cursor = "cursor" in operation.args_schema["properties"]
        assert has_cursor == operation.paginated


def test_args_schemas_are_closed_unless_the_body_is_open(catalog):
    """Operations without a body, or with a closed one, take no other argument; an open
    body (create_model's) takes extra fields."""
    assert catalog["get_prediction"].args_schema["additionalProperties"] is False
    assert catalog["search_models"].args_schema["additionalProperties"] is False
    assert "additionalProperties" not in catalog["create_model"].args_schema
