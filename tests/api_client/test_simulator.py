"""The offline Replicate: lifecycle, Prefer: wait, cancel, pagination and the real errors."""

from __future__ import annotations

import json

import httpx
import pytest

from api_client.simulator import (
    DEMO_VERSION_ALIAS,
    HELLO_VERSION,
    SDXL_VERSION,
    Simulator,
    SimulatorTransport,
    download_url,
)

BASE = "https://api.replicate.com/v1"
AUTH = {"Authorization": "Bearer r8_sim_default"}
GENERIC_404 = {"detail": "The requested resource could not be found.", "status": 404}


@pytest.fixture
def http(transport):
    with httpx.Client(transport=transport, base_url=BASE, headers=AUTH) as client:
        yield client


def create(http, version=HELLO_VERSION, inputs=None, headers=None):
    body = {"version": version, "input": inputs if inputs is not None else {"text": "Alice"}}
    return http.post("/predictions", json=body, headers=headers or {})


def test_missing_or_wrong_token_gets_the_real_401(transport):
    """No token or an unknown one answers Replicate's problem+json 401."""
    with httpx.Client(transport=transport, base_url=BASE) as anonymous:
        for headers in ({}, {"Authorization": "Bearer r8_real_looking"}):
            response = anonymous.get("/account", headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json() == {
                "title": "Unauthenticated",
                "detail": "You did not pass a valid authentication token",
                "status": 401,
            }


def test_simulator_tokens_and_explicit_tokens_name_their_users(clock):
    """r8_sim_<name> maps to luaq-sim[-name]; explicit tokens map to their usernames."""
    simulator = Simulator(tokens={"r8_custom": "alice"}, clock=clock, sleep=clock.sleep)
    with httpx.Client(transport=SimulatorTransport(simulator), base_url=BASE) as http:
        for token, user in [
            ("r8_sim_default", "luaq-sim"),
            ("r8_sim_work", "luaq-sim-work"),
            ("r8_custom", "alice"),
        ]:
            response = http.get("/account", headers={"Authorization": f"Bearer {token}"})
            assert response.json()["username"] == user


def test_prediction_moves_from_starting_to_processing_to_succeeded(http, clock):
    """Status follows the injected clock: 20% starting, then processing, then succeeded."""
    created = create(http)
    assert created.status_code == 201
    prediction = created.json()
    assert prediction["status"] == "starting"
    assert prediction["output"] is None and "started_at" not in prediction
    assert prediction["urls"]["get"] == f"{BASE}/predictions/{prediction['id']}"
    assert set(prediction["urls"]) == {"get", "cancel", "web", "stream"}
    assert prediction["source"] == "api" and prediction["data_removed"] is False

    clock.advance(0.3)
    processing = http.get(f"/predictions/{prediction['id']}").json()
    assert processing["status"] == "processing"
    assert "started_at" in processing and processing["output"] is None

    clock.advance(0.7)
    done = http.get(f"/predictions/{prediction['id']}").json()
    assert done["status"] == "succeeded"
    assert done["output"] == "hello Alice"
    assert done["metrics"]["predict_time"] == pytest.approx(0.8)
    assert done["completed_at"] > done["started_at"] > done["created_at"]


def test_image_models_output_delivery_urls(http, clock):
    """An official image model returns replicate.delivery URLs, version "hidden"."""
    response = http.post(
        "/models/black-forest-labs/flux-schnell/predictions",
        json={"input": {"prompt": "a fox", "num_outputs": 2}},
    )
    prediction = response.json()
    assert prediction["version"] == "hidden"
    assert prediction["model"] == "black-forest-labs/flux-schnell"
    clock.advance(1)
    output = http.get(f"/predictions/{prediction['id']}").json()["output"]
    assert len(output) == 2
    assert all(url.startswith("https://replicate.delivery/") for url in output)


def test_prefer_wait_holds_the_request_until_the_prediction_finishes(http, clock):
    """Prefer: wait returns the finished prediction, sleeping on the injected clock."""
    start = clock.now
    response = create(http, headers={"Prefer": "wait"})
    assert response.status_code == 201
    assert response.headers["preference-applied"] == "wait"
    assert response.json()["status"] == "succeeded"
    assert response.json()["output"] == "hello Alice"
    assert clock.now - start == pytest.approx(1.0)


def test_prefer_wait_n_gives_up_after_n_seconds(transport, clock):
    """With wait=1 and a 10 s prediction, the answer comes after 1 s, still running."""
    simulator = Simulator(prediction_seconds=10, clock=clock, sleep=clock.sleep)
    with httpx.Client(transport=SimulatorTransport(simulator), base_url=BASE, headers=AUTH) as http:
        start = clock.now
        prediction = create(http, headers={"Prefer": "wait=1"}).json()
    assert prediction["status"] == "starting"
    assert clock.now - start == pytest.approx(1.0)


def test_prefer_wait_ends_even_if_the_clock_never_moves(clock):
    """A sleep that does not advance the clock still cannot hold a request forever."""
    slept = []
    simulator = Simulator(clock=clock, sleep=slept.append)
    with httpx.Client(transport=SimulatorTransport(simulator), base_url=BASE, headers=AUTH) as http:
        prediction = create(http, headers={"Prefer": "wait=2"}).json()
    assert prediction["status"] == "starting"
    assert sum(slept) == pytest.approx(2.0)


def test_cancel_is_idempotent_and_terminal_predictions_stay(http, clock):
    """Cancel makes a running prediction canceled, again and again; a finished one stays."""
    running = create(http).json()
    first = http.post(f"/predictions/{running['id']}/cancel")
    assert (first.status_code, first.json()["status"]) == (200, "canceled")
    clock.advance(5)
    again = http.post(f"/predictions/{running['id']}/cancel").json()
    assert again["status"] == "canceled" and again["completed_at"] == first.json()["completed_at"]

    finished = create(http).json()
    clock.advance(2)
    assert http.post(f"/predictions/{finished['id']}/cancel").json()["status"] == "succeeded"


def test_cancel_after_sets_a_deadline_that_aborts_or_cancels(transport, clock):
    """A deadline before the start aborts; one after the start cancels."""
    simulator = Simulator(prediction_seconds=100, clock=clock, sleep=clock.sleep)
    with httpx.Client(transport=SimulatorTransport(simulator), base_url=BASE, headers=AUTH) as http:
        early = create(http, headers={"Cancel-After": "5s"}).json()
        late = create(http, headers={"Cancel-After": "1m"}).json()
        assert early["deadline"] and late["deadline"]
        clock.advance(61)
        assert http.get(f"/predictions/{early['id']}").json()["status"] == "aborted"
        assert http.get(f"/predictions/{late['id']}").json()["status"] == "canceled"
        too_short = create(http, headers={"Cancel-After": "2"})
    assert too_short.status_code == 400


def test_predictions_are_paginated_with_absolute_cursor_urls(clock):
    """Pages carry absolute next/previous URLs with ?cursor=, newest first."""
    simulator = Simulator(clock=clock, sleep=clock.sleep, page_size=2)
    with httpx.Client(transport=SimulatorTransport(simulator), base_url=BASE, headers=AUTH) as http:
        ids = []
        for _ in range(5):
            ids.append(create(http).json()["id"])
            clock.advance(0.01)
        seen, url, pages = [], "/predictions", 0
        while url:
            page = http.get(url).json()
            seen += [p["id"] for p in page["results"]]
            if page["next"]:
                assert page["next"].startswith(f"{BASE}/predictions?cursor=")
            url, pages = page["next"], pages + 1
        assert seen == ids[::-1] and pages == 3
        second = http.get(http.get("/predictions").json()["next"]).json()
        assert second["previous"].startswith(f"{BASE}/predictions?cursor=")


def test_unknown_ids_answer_the_generic_404(http):
    """Unknown predictions, models and collections answer the real 404 body."""
    for path in ("/predictions/nope", "/models/nobody/nothing", "/collections/nope", "/nowhere"):
        response = http.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == GENERIC_404


def test_unknown_version_answers_the_real_422(http):
    """Creating a prediction with an unknown version gives Replicate's 422 body."""
    response = create(http, version="0" * 64)
    assert response.status_code == 422
    assert response.json() == {
        "title": "Invalid version or not permitted",
        "detail": "The specified version does not exist (or perhaps you don't have permission to use it?)",
        "status": 422,
    }


def test_prediction_request_rejects_unknown_fields_and_needs_input(http):
    """The request body is additionalProperties false and requires input."""
    extra = http.post("/predictions", json={"version": HELLO_VERSION, "input": {}, "inputs": {}})
    assert extra.status_code == 422
    assert extra.headers["content-type"] == "application/problem+json"
    assert "Additional property inputs is not allowed" in extra.json()["detail"]
    missing = http.post("/predictions", json={"version": HELLO_VERSION})
    assert missing.status_code == 422 and "input is required" in missing.json()["detail"]


def test_versions_resolve_by_hex_id_and_model_reference(http):
    """The 64-hex id and owner/name:id reach the same version."""
    for version in (HELLO_VERSION, f"replicate/hello-world:{HELLO_VERSION}"):
        assert create(http, version=version).json()["version"] == HELLO_VERSION
    got = http.get(f"/models/replicate/hello-world/versions/{HELLO_VERSION}").json()
    schema = got["openapi_schema"]["components"]["schemas"]["Input"]
    assert schema["required"] == ["text"]


def test_reference_example_version_takes_a_prompt(http):
    """The reference's version id `replicate-version-id` is a prompt-taking image model."""
    response = http.post("/predictions", json={"version": DEMO_VERSION_ALIAS, "input": {"prompt": "a trail"}})
    assert response.status_code == 201, response.text
    assert response.json()["version"] == SDXL_VERSION


def test_model_inputs_are_checked_against_the_version_schema(http):
    """hello-world needs input.text: without it the create is a 422."""
    response = create(http, inputs={"prompt": "hi"})
    assert response.status_code == 422
    assert "text is required" in response.json()["detail"]


def test_official_models_hide_their_versions(http):
    """An official model's version list answers the real 404; owner/name runs it."""
    response = http.get("/models/black-forest-labs/flux-schnell/versions")
    assert response.status_code == 404
    assert response.json() == {
        "title": "Not found",
        "detail": "This model is an official model and does not expose a list of versions.",
        "status": 404,
    }
    assert create(http, version="black-forest-labs/flux-schnell", inputs={"prompt": "x"}).json()["version"] == "hidden"


def test_official_model_predictions_need_an_official_model(http):
    """POST /models/{o}/{n}/predictions for a community model is the real 422 for a
    missing version (replicate-python issue #320); an unknown model is the generic 404."""
    response = http.post("/models/replicate/hello-world/predictions", json={"input": {"text": "a"}})
    assert (response.status_code, response.json()) == (
        422,
        {
            "title": "Invalid version or not permitted",
            "detail": "The specified version does not exist (or perhaps you don't have permission to use it?)",
            "status": 422,
        },
    )
    response = http.post("/models/nobody/nothing/predictions", json={"input": {}})
    assert (response.status_code, response.json()) == (404, GENERIC_404)


def test_demo_data_supports_the_reference_examples(http):
    """prediction-id is running, the deployment runs predictions, collections and the
    demo training exist."""
    demo = http.get("/predictions/prediction-id").json()
    assert demo["status"] == "processing"
    deployment = http.post(
        "/deployments/example-org/image-worker/predictions",
        json={"input": {"prompt": "a quiet forest trail"}},
    ).json()
    assert deployment["deployment"] == "example-org/image-worker"
    assert deployment["model"] == "stability-ai/sdxl"
    collection = http.get("/collections/text-to-image").json()
    assert "flux-schnell" in [m["name"] for m in collection["models"]]
    assert http.get("/trainings/training-id").json()["status"] == "succeeded"


def test_hardware_is_a_bare_array(http):
    """GET /hardware answers a list, not a page."""
    hardware = http.get("/hardware").json()
    assert isinstance(hardware, list) and {"name": "CPU", "sku": "cpu"} in hardware


def test_search_models_uses_the_query_method(http):
    """QUERY /models with a text body returns a page of matching models."""
    response = http.request("QUERY", "/models", content=b"llama", headers={"Content-Type": "text/plain"})
    names = [m["name"] for m in response.json()["results"]]
    assert names == ["meta-llama-3-70b-instruct", "meta-llama-3-8b-instruct"]


def test_search_beta_requires_a_query(http):
    """GET /search without a query answers the documented 400."""
    response = http.get("/search")
    assert response.status_code == 400
    assert response.json() == {"detail": 'Query parameter "query" is required'}
    found = http.get("/search", params={"query": "image generation", "limit": 2}).json()
    assert len(found["models"]) == 2 and found["query"] == "image generation"


def test_files_can_be_created_listed_fetched_downloaded_and_deleted(http, simulator, clock):
    """The file object has the real shape, and the signed download returns the bytes."""
    created = http.post(
        "/files",
        files={"content": ("note.txt", b"hello", "text/plain")},
        data={"metadata": json.dumps({"k": "v"})},
    )
    assert created.status_code == 201
    file = created.json()
    assert set(file) == {
        "id", "name", "content_type", "size", "etag", "checksums", "metadata",
        "created_at", "expires_at", "urls",
    }  # fmt: skip
    assert file["checksums"]["md5"] == "5d41402abc4b2a76b9719d911017c592"
    assert file["expires_at"] > file["created_at"]
    assert [f["id"] for f in http.get("/files").json()["results"]] == [file["id"]]
    assert http.get(f"/files/{file['id']}").json() == file

    expiry = int(clock.now) + 60
    signature = simulator.sign_download(file["id"], "luaq-sim", expiry)
    url = download_url(BASE, file["id"], "luaq-sim", expiry, signature)
    download = http.get(url)
    assert (download.status_code, download.content) == (200, b"hello")
    assert download.headers["content-type"] == "application/octet-stream"
    forged = http.get(download_url(BASE, file["id"], "luaq-sim", expiry, "AAAA"))
    assert forged.status_code == 404

    assert http.delete(f"/files/{file['id']}").status_code == 204
    gone = http.get(f"/files/{file['id']}")
    assert (gone.status_code, gone.json()["detail"]) == (404, "File not found")


def test_files_expire_after_a_day(http, clock):
    """A file is gone 24 hours after it was created."""
    file = http.post("/files", files={"content": ("a", b"a", "text/plain")}).json()
    clock.advance(24 * 3600)
    assert http.get(f"/files/{file['id']}").status_code == 404


def test_oversized_uploads_get_an_html_413(clock):
    """Over the upload limit, the simulator answers an HTML page like the real proxy."""
    simulator = Simulator(clock=clock, sleep=clock.sleep, max_upload_bytes=4)
    status, headers, body = simulator.handle(
        "POST",
        "/v1/files",
        {},
        {**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
        b'--b\r\nContent-Disposition: form-data; name="content"; filename="x"\r\n\r\n12345\r\n--b--\r\n',
    )
    assert status == 413
    assert headers["Content-Type"] == "text/html"
    assert b"<title>413 Request Entity Too Large</title>" in body


def test_trainings_run_to_a_new_version(http, clock):
    """A training into the demo destination succeeds with version and weights."""
    training = http.post(
        f"/models/replicate/hello-world/versions/{HELLO_VERSION}/trainings",
        json={"destination": "example-org/hello-world-tuned", "input": {"train_data": "x"}},
    ).json()
    assert training["status"] == "starting"
    clock.advance(1)
    done = http.get(f"/trainings/{training['id']}").json()
    assert done["status"] == "succeeded" and set(done["output"]) == {"version", "weights"}
    assert [t["id"] for t in http.get("/trainings").json()["results"]] == [training["id"]]
    bad = http.post(
        f"/models/replicate/hello-world/versions/{HELLO_VERSION}/trainings",
        json={"destination": "nobody/nothing", "input": {}},
    )
    assert bad.json() == {
        "detail": "The specified training destination does not exist",
        "status": 404,
    }


def test_deployments_can_be_created_updated_and_deleted(http):
    """A new deployment starts at release 1, an update bumps it, delete answers 204."""
    created = http.post(
        "/deployments",
        json={
            "name": "mine",
            "model": "replicate/hello-world",
            "version": HELLO_VERSION,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 1,
        },
    ).json()
    assert (created["owner"], created["current_release"]["number"]) == ("luaq-sim", 1)
    updated = http.patch("/deployments/luaq-sim/mine", json={"max_instances": 3}).json()
    assert updated["current_release"]["number"] == 2
    assert updated["current_release"]["configuration"]["max_instances"] == 3
    assert http.delete("/deployments/luaq-sim/mine").status_code == 204
    assert http.get("/deployments/luaq-sim/mine").status_code == 404


def test_models_can_be_created_updated_and_deleted(http):
    """A private model without versions can be created, updated and deleted by its owner."""
    body = {"owner": "luaq-sim", "name": "m", "visibility": "private", "hardware": "cpu"}
    assert http.post("/models", json=body).status_code == 201
    assert http.post("/models", json=body).status_code == 409
    updated = http.patch("/models/luaq-sim/m", json={"description": "new"}).json()
    assert updated["description"] == "new"
    assert http.delete("/models/luaq-sim/m").status_code == 204
    assert http.patch("/models/replicate/hello-world", json={}).status_code == 403


def test_wrong_method_is_405_and_responses_carry_rate_limit_headers(http):
    """A known path with the wrong method is 405; answers have ratelimit headers."""
    assert http.put("/account").status_code == 405
    response = http.get("/account")
    assert response.headers["ratelimit-remaining"] == "2999"
    assert response.headers["ratelimit-reset"] == "1"


def test_throttle_answers_the_real_429(http, simulator):
    """throttle() makes the next request a 429 with retry_after and Retry-After."""
    simulator.throttle(retry_after=5)
    response = http.get("/account")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "detail": "Request was throttled. Your rate limit resets in ~5s.",
        "status": 429,
        "retry_after": 5,
    }
    assert http.get("/account").status_code == 200


def test_webhook_secret_is_a_whsec_key(http):
    """The default webhook secret looks like Replicate's (whsec_...)."""
    assert http.get("/webhooks/default/secret").json()["key"].startswith("whsec_")


def test_predictions_are_private_to_their_account(http, transport):
    """Another account neither sees nor lists someone else's prediction."""
    prediction = create(http).json()
    with httpx.Client(transport=transport, base_url=BASE, headers={"Authorization": "Bearer r8_sim_work"}) as other:
        assert other.get(f"/predictions/{prediction['id']}").status_code == 404
        assert other.get("/predictions").json()["results"] == []


def test_prediction_ids_never_repeat_across_simulators():
    """A restarted simulator does not hand out the ids of the predictions an earlier one
    made (results kept from an earlier run would point at someone else's prediction)."""
    from api_client.simulator import Simulator

    first, second = Simulator(), Simulator()
    ids = [first.state.new_id() for _ in range(3)] + [second.state.new_id() for _ in range(3)]
    assert len(set(ids)) == 6 and all(len(i) == 26 for i in ids)
