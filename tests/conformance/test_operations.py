"""One conformance case per operation: the exact request a Lua call produces, under each of
its three names (long, short, slug), as the simulator received it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from api_client import load_catalog
from api_client.simulator import HELLO_VERSION

JSON = "application/json"


@dataclass(frozen=True)
class Case:
    """A Lua argument table and the request it must become."""

    args: str
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # besides the common ones
    body: bytes = b""


CASES: dict[str, Case] = {
    "get_account": Case("{}", "GET", "/v1/account"),
    "list_collections": Case("{ cursor = 'b249MQ' }", "GET", "/v1/collections", {"cursor": "b249MQ"}),
    "get_collection": Case("{ collection_slug = 'text-to-image' }", "GET", "/v1/collections/text-to-image"),
    "list_deployments": Case("{}", "GET", "/v1/deployments"),
    "create_deployment": Case(
        "{ name = 'my-worker', model = 'replicate/hello-world', version = '" + HELLO_VERSION + "', "
        "hardware = 'gpu-t4', min_instances = 0, max_instances = 1 }",
        "POST",
        "/v1/deployments",
        headers={"content-type": JSON},
        body=(
            b'{"hardware": "gpu-t4", "max_instances": 1, "min_instances": 0, "model": "replicate/hello-world", '
            b'"name": "my-worker", "version": "' + HELLO_VERSION.encode() + b'"}'
        ),
    ),
    "delete_deployment": Case(
        "{ deployment_owner = 'example-org', deployment_name = 'image-worker' }",
        "DELETE",
        "/v1/deployments/example-org/image-worker",
    ),
    "get_deployment": Case(
        "{ deployment_owner = 'example-org', deployment_name = 'image-worker' }",
        "GET",
        "/v1/deployments/example-org/image-worker",
    ),
    "update_deployment": Case(
        "{ deployment_owner = 'example-org', deployment_name = 'image-worker', max_instances = 2 }",
        "PATCH",
        "/v1/deployments/example-org/image-worker",
        headers={"content-type": JSON},
        body=b'{"max_instances": 2}',
    ),
    "create_deployment_prediction": Case(
        "{ deployment_owner = 'example-org', deployment_name = 'image-worker', input = { prompt = 'a fox' }, "
        "prefer = 'wait=5', cancel_after = '30s' }",
        "POST",
        "/v1/deployments/example-org/image-worker/predictions",
        headers={"content-type": JSON, "prefer": "wait=5", "cancel-after": "30s"},
        body=b'{"input": {"prompt": "a fox"}}',
    ),
    "list_files": Case("{}", "GET", "/v1/files"),
    "create_file": Case(
        "{ content = 'hello', filename = 'hello.txt', type = 'text/plain', metadata = { source = 'lua' } }",
        "POST",
        "/v1/files",
        headers={"content-type": "multipart/form-data; boundary=BOUNDARY"},
        body=(
            b"--BOUNDARY\r\n"
            b'Content-Disposition: form-data; name="filename"\r\n\r\nhello.txt\r\n'
            b"--BOUNDARY\r\n"
            b'Content-Disposition: form-data; name="type"\r\n\r\ntext/plain\r\n'
            b"--BOUNDARY\r\n"
            b'Content-Disposition: form-data; name="metadata"\r\n\r\n{"source": "lua"}\r\n'
            b"--BOUNDARY\r\n"
            b'Content-Disposition: form-data; name="content"; filename="hello.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\nhello\r\n"
            b"--BOUNDARY--\r\n"
        ),
    ),
    "delete_file": Case("{ file_id = 'file-id' }", "DELETE", "/v1/files/file-id"),
    "get_file": Case("{ file_id = 'file-id' }", "GET", "/v1/files/file-id"),
    "download_file": Case(
        "{ file_id = 'file-id', owner = 'luaq-sim', expiry = 1708515345, signature = 'c2ln/+=' }",
        "GET",
        "/v1/files/file-id/download",
        {"owner": "luaq-sim", "expiry": "1708515345", "signature": "c2ln/+="},
    ),
    "list_hardware": Case("{}", "GET", "/v1/hardware"),
    "list_models": Case(
        "{ sort_by = 'model_created_at', sort_direction = 'asc' }",
        "GET",
        "/v1/models",
        {"sort_by": "model_created_at", "sort_direction": "asc"},
    ),
    "create_model": Case(
        "{ owner = 'luaq-sim', name = 'my-model', visibility = 'private', hardware = 'cpu', description = 'mine' }",
        "POST",
        "/v1/models",
        headers={"content-type": JSON},
        body=b'{"description": "mine", "hardware": "cpu", "name": "my-model", "owner": "luaq-sim", "visibility": "private"}',
    ),
    "search_models": Case(
        "{ body = 'image generation' }",
        "QUERY",
        "/v1/models",
        headers={"content-type": "text/plain"},
        body=b"image generation",
    ),
    "delete_model": Case(
        "{ model_owner = 'luaq-sim', model_name = 'my-model' }", "DELETE", "/v1/models/luaq-sim/my-model"
    ),
    "get_model": Case(
        "{ model_owner = 'replicate', model_name = 'hello-world' }", "GET", "/v1/models/replicate/hello-world"
    ),
    "update_model": Case(
        "{ model_owner = 'replicate', model_name = 'hello-world', description = 'new' }",
        "PATCH",
        "/v1/models/replicate/hello-world",
        headers={"content-type": JSON},
        body=b'{"description": "new"}',
    ),
    "list_model_examples": Case(
        "{ model_owner = 'replicate', model_name = 'hello-world' }", "GET", "/v1/models/replicate/hello-world/examples"
    ),
    "create_model_prediction": Case(
        "{ model_owner = 'black-forest-labs', model_name = 'flux-schnell', input = { prompt = 'a fox', num_outputs = 2 },"
        " webhook = 'https://example.com/hook', webhook_events_filter = { 'completed' } }",
        "POST",
        "/v1/models/black-forest-labs/flux-schnell/predictions",
        headers={"content-type": JSON},
        body=(
            b'{"input": {"num_outputs": 2, "prompt": "a fox"}, "webhook": "https://example.com/hook", '
            b'"webhook_events_filter": ["completed"]}'
        ),
    ),
    "get_model_readme": Case(
        "{ model_owner = 'replicate', model_name = 'hello-world' }", "GET", "/v1/models/replicate/hello-world/readme"
    ),
    "list_model_versions": Case(
        "{ model_owner = 'replicate', model_name = 'hello-world' }", "GET", "/v1/models/replicate/hello-world/versions"
    ),
    "delete_model_version": Case(
        "{ model_owner = 'replicate', model_name = 'hello-world', version_id = '" + HELLO_VERSION + "' }",
        "DELETE",
        "/v1/models/replicate/hello-world/versions/" + HELLO_VERSION,
    ),
    "get_model_version": Case(
        "{ model_owner = 'replicate', model_name = 'hello-world', version_id = '" + HELLO_VERSION + "' }",
        "GET",
        "/v1/models/replicate/hello-world/versions/" + HELLO_VERSION,
    ),
    "create_training": Case(
        "{ model_owner = 'replicate', model_name = 'hello-world', version_id = '" + HELLO_VERSION + "', "
        "destination = 'example-org/hello-world-tuned', input = { train_data = 'https://example.com/data.zip' } }",
        "POST",
        "/v1/models/replicate/hello-world/versions/" + HELLO_VERSION + "/trainings",
        headers={"content-type": JSON},
        body=b'{"destination": "example-org/hello-world-tuned", "input": {"train_data": "https://example.com/data.zip"}}',
    ),
    "list_predictions": Case(
        "{ created_after = '2024-01-01T00:00:00Z', source = 'web', "
        "cursor = 'https://api.replicate.com/v1/predictions?cursor=bz0xMDA' }",
        "GET",
        "/v1/predictions",
        {"created_after": "2024-01-01T00:00:00Z", "source": "web", "cursor": "bz0xMDA"},
    ),
    "create_prediction": Case(
        "{ version = '" + HELLO_VERSION + "', input = { text = 'Alice' }, Prefer = 'wait', ['Cancel-After'] = '1m' }",
        "POST",
        "/v1/predictions",
        headers={"content-type": JSON, "prefer": "wait", "cancel-after": "1m"},
        body=b'{"input": {"text": "Alice"}, "version": "' + HELLO_VERSION.encode() + b'"}',
    ),
    "get_prediction": Case("{ prediction_id = 'prediction-id' }", "GET", "/v1/predictions/prediction-id"),
    "cancel_prediction": Case("{ prediction_id = 'prediction-id' }", "POST", "/v1/predictions/prediction-id/cancel"),
    "search": Case("{ query = 'flux', limit = 5 }", "GET", "/v1/search", {"query": "flux", "limit": "5"}),
    "list_trainings": Case("{}", "GET", "/v1/trainings"),
    "get_training": Case("{ training_id = 'training-id' }", "GET", "/v1/trainings/training-id"),
    "cancel_training": Case("{ training_id = 'training-id' }", "POST", "/v1/trainings/training-id/cancel"),
    "get_default_webhook_secret": Case("{}", "GET", "/v1/webhooks/default/secret"),
}

CATALOG = load_catalog()
FORMS = ("long_name", "short_name", "slug")


def test_there_is_a_case_for_every_operation():
    """The table covers the 37 operations, no more."""
    assert sorted(CASES) == sorted(op.short_name for op in CATALOG)
    for op in CATALOG:
        case = CASES[op.short_name]
        assert (case.method, case.path.count("/")) == (op.method, ("/v1" + op.path).count("/"))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("short_name", sorted(CASES))
def test_lua_call_sends_the_exact_request(lua, sim, short_name, form):
    """The Lua call under this name form produces exactly the case's request."""
    operation = CATALOG[short_name]
    name = getattr(operation, form)
    case = CASES[short_name]
    envelope = lua(f"local ok, err = pcall(app.integrations.replicate.{name}, {case.args})\nreturn ok or tostring(err)")
    assert envelope.status == "succeeded", envelope.error
    assert len(sim.requests) == 1, envelope.result
    request = sim.requests[0]
    assert (request.method, request.path, request.query) == (case.method, case.path, case.query)
    assert request.route == short_name and request.user == "luaq-sim"
    headers = request.headers
    assert headers["authorization"] == "Bearer [redacted]"
    assert headers["accept"] == JSON
    assert headers["user-agent"].startswith("luaq/")
    body = request.body
    if "multipart" in case.headers.get("content-type", ""):
        boundary = re.fullmatch(r"multipart/form-data; boundary=(\S+)", headers["content-type"]).group(1)
        body = body.replace(boundary.encode(), b"BOUNDARY")
        headers = {**headers, "content-type": headers["content-type"].replace(boundary, "BOUNDARY")}
    for header in ("content-type", "prefer", "cancel-after"):
        assert headers.get(header) == case.headers.get(header), header
    assert body == case.body
    if case.body:
        assert headers["content-length"] == str(len(request.body))


@pytest.mark.parametrize("account", ["default", "work"])
def test_named_accounts_send_their_own_credentials(lua, sim, account):
    """app.integrations.replicate.<account>.<fn> authenticates as that account."""
    envelope = lua(f"return app.integrations.replicate.{account}.get_account({{}}).username")
    expected = "luaq-sim" if account == "default" else "luaq-sim-work"
    assert envelope.result == [expected]
    assert [r.user for r in sim.requests] == [expected]


def test_path_values_are_url_encoded(lua, sim):
    """Path values are percent-encoded as one segment each: no slash or space leaks."""
    lua("pcall(app.integrations.replicate.get_model, { model_owner = 'a b', model_name = 'x/y?z#' })")
    lua("pcall(app.integrations.replicate.get_file, { file_id = 'é%' })")
    assert [r.path for r in sim.requests] == ["/v1/models/a%20b/x%2Fy%3Fz%23", "/v1/files/%C3%A9%25"]
    assert [r.route for r in sim.requests] == ["get_model", "get_file"]


@pytest.mark.parametrize("spelling", ["Cancel-After", "cancel_after", "cancel-after"])
def test_header_parameters_never_leak_into_the_body(lua, sim, spelling):
    """Each spelling of a header parameter becomes the header, and only the header."""
    lua(
        "app.integrations.replicate.create_model_prediction({ model_owner = 'black-forest-labs', "
        f"model_name = 'flux-schnell', input = {{ prompt = 'x' }}, ['{spelling}'] = '10s' }})"
    )
    (request,) = sim.requests
    assert request.headers["cancel-after"] == "10s"
    assert request.body == b'{"input": {"prompt": "x"}}'
