"""Replicate fidelity seen from Lua: Cancel-After and wait, run's endpoints, retries after a
429, HTML error pages, schema-guided conversion, argument errors and the docs pages."""

from __future__ import annotations

import json
import time

from api_client.simulator import HELLO_VERSION, SDXL_VERSION

R = "app.integrations.replicate"


def test_cancel_after_on_a_queued_prediction_ends_aborted_and_wait_returns_promptly(lua, sim, clock):
    """A prediction kept queued with Cancel-After: 5s is aborted at its deadline; wait
    returns it after one held GET, 5 simulated seconds later, without really sleeping."""
    sim.keep_queued = True
    started, real_start = clock.now, time.monotonic()
    envelope = lua(
        f"""
        local p = {R}.create_prediction({{ version = "{SDXL_VERSION}", input = {{ prompt = "x" }},
                                           cancel_after = "5s" }})
        local done = {R}.wait({{ prediction = p }})
        return p.id, p.status, done.status, done.completed_at ~= nil, done.started_at == nil
        """
    )
    prediction_id, *statuses = envelope.result
    assert statuses == ["starting", "aborted", True, True], envelope.error
    assert clock.now - started == 5.0
    assert time.monotonic() - real_start < 2
    create, held = sim.requests
    assert create.headers["cancel-after"] == "5s"
    assert (held.method, held.path, held.headers["prefer"]) == ("GET", f"/v1/predictions/{prediction_id}", "wait")
    assert held.status == 200


def test_run_with_a_timeout_sends_cancel_after_and_stops_at_its_deadline(lua, sim, clock):
    """run{timeout = 12} asks Replicate to cancel after 12 s and returns the prediction as
    it stands just before its own deadline; Replicate then aborts it."""
    sim.keep_queued = True
    started = clock.now
    envelope = lua(
        f"""
        local p = {R}.run({{ ref = "replicate/hello-world:{HELLO_VERSION}", input = {{ text = "a" }}, timeout = 12 }})
        local waited = os.clock()
        sleep(1)
        return p.status, {R}.get_prediction({{ prediction_id = p.id }}).status
        """
    )
    assert envelope.result == ["starting", "aborted"], envelope.error
    create, *polls, last = sim.requests
    assert create.headers["cancel-after"] == "12s" and create.headers["prefer"] == "wait=11"
    assert all(p.time - started <= 12 for p in polls)
    assert len(polls) <= 5
    assert last.time - started >= 12


def test_run_with_a_version_ref_uses_the_predictions_endpoint(lua, sim):
    """owner/name:<version> goes to POST /v1/predictions with the version id."""
    envelope = lua(f'return {R}.run({{ ref = "replicate/hello-world:{HELLO_VERSION}", input = {{ text = "Ann" }} }})')
    prediction = envelope.result[0]
    assert (prediction["status"], prediction["output"]) == ("succeeded", "hello Ann")
    create = sim.requests[0]
    assert (create.method, create.path, create.headers["prefer"]) == ("POST", "/v1/predictions", "wait")
    assert create.json() == {"input": {"text": "Ann"}, "version": HELLO_VERSION}


def test_run_with_a_model_ref_uses_the_models_endpoint(lua, sim):
    """owner/name goes to POST /v1/models/{owner}/{name}/predictions."""
    envelope = lua(f'return {R}.run({{ ref = "black-forest-labs/flux-schnell", input = {{ prompt = "fox" }} }}).status')
    assert envelope.result == ["succeeded"]
    create = sim.requests[0]
    assert (create.method, create.path) == ("POST", "/v1/models/black-forest-labs/flux-schnell/predictions")
    assert create.json() == {"input": {"prompt": "fox"}}


def test_run_with_a_bare_version_id_or_the_demo_id_uses_the_predictions_endpoint(lua, sim):
    """A bare 64-hex id and the demo id replicate-version-id both become {version = id}."""
    lua(
        f"""
        {R}.run({{ ref = "{SDXL_VERSION}", input = {{ prompt = "a" }}, wait = false }})
        {R}.replicate_run({{ ref = "replicate-version-id", input = {{ prompt = "b" }}, wait = false }})
        """
    )
    assert [(r.path, r.json()["version"]) for r in sim.requests] == [
        ("/v1/predictions", SDXL_VERSION),
        ("/v1/predictions", "replicate-version-id"),
    ]
    assert all("prefer" not in r.headers for r in sim.requests)


def test_a_429_on_a_create_is_waited_out_and_the_prediction_created_once(lua, sim, clock):
    """Replicate's 429 with retry_after: 2 on a create is slept (2 s, simulated) and the
    create sent again; exactly one prediction exists afterwards."""
    body = {"detail": "Request was throttled. Your rate limit resets in ~2s.", "status": 429, "retry_after": 2}
    sim.inject("create_prediction", 429, body, headers={"Retry-After": "2"})
    before = len(sim.state.jobs)
    envelope = lua(f'return {R}.create_prediction({{ version = "{HELLO_VERSION}", input = {{ text = "a" }} }}).status')
    assert envelope.result == ["starting"]
    assert [r.status for r in sim.requests] == [429, 201]
    assert clock.sleeps == [2]
    assert len(sim.state.jobs) == before + 1
    assert envelope.integration_calls[0]["status"] == "ok"


def test_a_413_html_page_is_a_clean_api_error(clock):
    """The proxy's HTML 413 reaches Lua as a catchable API error with status and text."""
    from api_client import ReplicateProvider, simulated_accounts
    from api_client.simulator import Simulator, SimulatorTransport
    from sandbox import run_script

    sim = Simulator(clock=clock, sleep=clock.sleep, max_upload_bytes=10)
    provider = ReplicateProvider(
        simulated_accounts(), transport=SimulatorTransport(sim), sleep=clock.sleep, clock=clock
    )
    envelope = run_script(
        f"""
        local ok, err = pcall({R}.create_file, {{ content = string.rep("x", 11) }})
        return ok, err.status, err.type, tostring(err)
        """,
        providers=[provider],
        allow_writes=True,
        clock=clock,
        sleep=clock.sleep,
    )
    assert envelope.result == [False, 413, "api", "replicate.create_file: 413 Request Entity Too Large"]
    assert sim.requests[0].status == 413


def test_empty_tables_and_json_markers_follow_the_schema(lua, sim):
    """input = {} is sent as {}, json.null as null, json.array() as [], json.object() as {}."""
    lua(
        f"""
        pcall({R}.create_prediction, {{ version = "{HELLO_VERSION}", input = {{}} }})
        pcall({R}.create_prediction, {{ version = "{HELLO_VERSION}", input = {{ text = "a", seed = json.null }},
                                        webhook_events_filter = json.array() }})
        pcall({R}.create_prediction, {{ body = {{ version = "{HELLO_VERSION}", input = json.object() }} }})
        """
    )
    bodies = [r.body for r in sim.requests]
    assert bodies == [
        b'{"input": {}, "version": "' + HELLO_VERSION.encode() + b'"}',
        b'{"input": {"seed": null, "text": "a"}, "version": "'
        + HELLO_VERSION.encode()
        + b'", "webhook_events_filter": []}',
        b'{"input": {}, "version": "' + HELLO_VERSION.encode() + b'"}',
    ]


def test_argument_errors_name_the_problem_and_send_nothing(lua, sim):
    """Missing, unknown (with the nearest name) and mistyped arguments are errors before
    any request; the prediction body takes no unknown field."""
    envelope = lua(
        f"""
        local out = {{}}
        for _, args in ipairs({{
            {{ input = {{}} }},
            {{ version = "v", input = {{}}, webhok = "https://x" }},
            {{ version = "v", input = "text" }},
            {{ body = {{ version = "v", input = {{}}, extra = 1 }} }},
        }}) do
            local ok, err = pcall({R}.create_prediction, args)
            out[#out + 1] = err.type .. ": " .. err.message
        end
        local ok, err = pcall({R}.get_prediction, {{ prediction = "x" }})
        out[#out + 1] = err.message
        return out
        """
    )
    assert envelope.result == [
        [
            "validation: replicate.create_prediction: missing required argument 'version' for replicate.create_prediction",
            "validation: replicate.create_prediction: unknown argument 'webhok' for replicate.create_prediction; "
            "did you mean 'webhook'?",
            "validation: replicate.create_prediction: argument 'input' for replicate.create_prediction must be "
            "a table with named fields (object), got a string",
            "validation: replicate.create_prediction: unknown argument 'body.extra' for "
            "replicate.create_prediction; valid: body.input, body.stream, body.version, body.webhook, "
            "body.webhook_events_filter",
            "replicate.get_prediction: missing required argument 'prediction_id' for replicate.get_prediction "
            "(got unknown argument 'prediction': did you mean 'prediction_id'?)",
        ]
    ]
    assert list(sim.requests) == []


def test_paginate_and_verify_webhook_from_lua(lua, sim):
    """paginate returns every page's results as one list; verify_webhook checks a signature
    without any request."""
    sim.page_size = 2
    envelope = lua(
        f"""
        for i = 1, 5 do {R}.create_prediction({{ version = "{HELLO_VERSION}", input = {{ text = tostring(i) }} }}); sleep(0.01) end
        local all = {R}.paginate({{ operation = "list_predictions" }})
        local texts = {{}}
        for _, p in ipairs(all) do texts[#texts + 1] = p.input.text end
        local secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        local headers = {{ ["webhook-id"] = "msg_p5jXN8AQM9LWM0D4loKWxJek", ["webhook-timestamp"] = "1614265330",
                          ["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" }}
        local good = {R}.verify_webhook({{ headers = headers, body = '{{"test": 2432232314}}', secret = secret }})
        local bad = {R}.verify_webhook({{ headers = headers, body = '{{"test": 1}}', secret = secret }})
        return table.concat(texts, ","), good, bad
        """
    )
    assert envelope.result == ["5,4,3,2,1", True, False], envelope.error
    pages = [r for r in sim.requests if r.method == "GET"]
    assert [r.query.get("cursor") is not None for r in pages] == [False, True, True]


def test_docs_page_of_create_prediction_lists_parameters_and_body_fields(lua):
    """docs.read shows the kind, headers under every spelling, body fields with type and
    whether required, and a Lua example."""
    envelope = lua('return docs.read("replicate.create_prediction")')
    page = envelope.result[0]
    assert "Operation: write (POST /v1/predictions)" in page
    assert "| Prefer / prefer | header | string | no |" in page
    assert "| Cancel-After / cancel_after / cancel-after | header | string | no |" in page
    assert "| input | object | yes |" in page
    assert "| version | string | yes |" in page
    assert "| webhook_events_filter | array of string (start \\| output \\| logs \\| completed) | no |" in page
    assert "local result = app.integrations.replicate.create_prediction(" in page


def test_helpers_have_docs_pages_and_appear_in_the_overview(lua):
    """docs.read works for run and wait; the namespace page lists the helpers."""
    envelope = lua('return docs.read("replicate.run"), docs.read("replicate.replicate_wait"), docs.read("replicate")')
    run_page, wait_page, overview = envelope.result
    assert run_page.startswith("# replicate.run — Run a model and wait for its output")
    assert "| ref | string | yes |" in run_page and "| wait | boolean or number | no |" in run_page
    assert "Operation: read" in wait_page and "| timeout | number | no |" in wait_page
    assert "## Helpers" in overview and "verify_webhook" in overview


def test_retries_are_reported_to_the_caller_of_the_provider(provider, sim, clock):
    """A 503 on a read is retried; CallOutcome.extra lists the retry and the requests."""
    sim.inject("get_account", 503, count=2)
    outcome = provider.call("get_account", "default", {}, timeout=60)
    assert outcome.value["username"] == "luaq-sim"
    assert outcome.extra["http_requests"] == 3
    assert [(r["attempt"], r["http_status"]) for r in outcome.extra["retries"]] == [(1, 503), (2, 503)]
    assert json.dumps(outcome.extra)  # plain JSON, ready for integration_calls


def test_create_file_content_is_bytes_a_data_url_or_an_attachment_never_a_path(sim, clock, tmp_path):
    """From Lua, content is the bytes, a data: URL or an attached file's name; a host path
    is a clear error unless --allow-read covers it; nothing is read from the worker."""
    from api_client import ReplicateProvider, simulated_accounts
    from api_client.simulator import SimulatorTransport
    from sandbox import run_script

    (tmp_path / "secret.txt").write_bytes(b"host file")
    provider = ReplicateProvider(
        simulated_accounts(),
        transport=SimulatorTransport(sim),
        attachments={"photo.png": b"\x89PNG attached"},
        sleep=clock.sleep,
        clock=clock,
    )
    envelope = run_script(
        f"""
        local sizes = {{}}
        for _, content in ipairs({{ "plain bytes", "data:text/plain;base64,aGVsbG8=", "photo.png" }}) do
            local file = {R}.create_file({{ content = content }})
            sizes[#sizes + 1] = file.name .. ":" .. file.content_type .. ":" .. file.size
        end
        local ok, err = pcall({R}.create_file, {{ content = "{tmp_path}/secret.txt" }})
        return sizes, err.type, err.message
        """,
        providers=[provider],
        allow_writes=True,
        clock=clock,
        sleep=clock.sleep,
    )
    sizes, error_type, message = envelope.result
    assert sizes == ["upload:application/octet-stream:11", "upload:text/plain:5", "photo.png:image/png:13"]
    assert error_type == "validation"
    assert "looks like a path on the host" in message and "--allow-read" in message
    assert len(sim.requests) == 3


def test_retries_are_recorded_in_integration_calls(clock):
    """A read retried after a 429 shows its retry in the envelope's integration_calls entry."""
    from api_client import ReplicateProvider, simulated_accounts
    from api_client.simulator import Simulator, SimulatorTransport
    from sandbox import run_script

    sim = Simulator(clock=clock, sleep=clock.sleep)
    sim.inject("GET /account", status=429, body={"detail": "Request was throttled.", "status": 429, "retry_after": 1})
    provider = ReplicateProvider(simulated_accounts(["default"]), transport=SimulatorTransport(sim),
                                 sleep=clock.sleep, clock=clock)  # fmt: skip
    envelope = run_script("return app.integrations.replicate.get_account({}).type", providers=[provider],
                          clock=clock, sleep=clock.sleep)  # fmt: skip
    assert envelope.success, envelope.error
    call = envelope.integration_calls[0]
    assert call["status"] == "ok"
    assert call["http_requests"] == 2
    assert call["retries"][0]["http_status"] == 429
