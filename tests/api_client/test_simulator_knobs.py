"""The simulator's knobs for tests and benchmarks: recorded requests, injected failures,
token buckets, latency, queued predictions, Prefer: wait on reads."""

from __future__ import annotations

import httpx
import pytest

from api_client.simulator import HELLO_VERSION, SDXL_VERSION, RateLimits, Simulator, SimulatorTransport

BASE = "https://api.replicate.com/v1"
AUTH = {"Authorization": "Bearer r8_sim_default"}


def http_for(sim: Simulator, token: str = "r8_sim_default") -> httpx.Client:
    return httpx.Client(transport=SimulatorTransport(sim), base_url=BASE, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def http(simulator):
    with http_for(simulator) as client:
        yield client


def create(http, version=HELLO_VERSION, inputs=None, headers=None):
    body = {"version": version, "input": inputs if inputs is not None else {"text": "Alice"}}
    return http.post("/predictions", json=body, headers=headers or {})


# --- recording ---------------------------------------------------------------------------


def test_every_request_is_recorded_with_its_answer(http, simulator, clock):
    """sim.requests has method, raw path, query, redacted headers, body, time, route, user
    and status, in order."""
    clock.advance(5)
    create(http)
    http.get("/models/a%20b/c", params={"x": "1"})
    http.get("/account", headers={"Authorization": "Bearer wrong"})
    first, second, third = simulator.requests
    assert (first.method, first.path, first.route, first.user, first.status) == (
        "POST",
        "/v1/predictions",
        "create_prediction",
        "luaq-sim",
        201,
    )
    assert first.json() == {"version": HELLO_VERSION, "input": {"text": "Alice"}}
    assert first.headers["authorization"] == "Bearer [redacted]"
    assert first.time == clock.now
    assert (second.path, second.query, second.status) == ("/v1/models/a%20b/c", {"x": "1"}, 404)
    assert (third.user, third.status) == (None, 401)
    assert simulator.request_count == 3


def test_the_record_is_bounded(clock):
    """Only the newest requests are kept, and only the first MiB of a body."""
    sim = Simulator(clock=clock, sleep=clock.sleep, record_requests=2)
    with http_for(sim) as http:
        for _ in range(5):
            http.get("/account")
        http.post("/models", content=b"x" * (2 * 1024 * 1024))
    assert len(sim.requests) == 2 and sim.request_count == 6
    assert (len(sim.requests[-1].body), sim.requests[-1].body_size) == (1024 * 1024, 2 * 1024 * 1024)


# --- injection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["*", "GET", "GET /predictions/{prediction_id}", "/v1/predictions/prediction-id", "get_prediction"],
)
def test_inject_matches_by_any_description(http, simulator, target):
    """A failure can target everything, a method, a route, a concrete path or an operation."""
    simulator.inject(target, 502)
    response = http.get("/predictions/prediction-id")
    assert response.status_code == 502
    assert response.json() == {"detail": "Bad Gateway", "status": 502}
    assert http.get("/predictions/prediction-id").status_code == 200


def test_inject_counts_and_leaves_other_requests_alone(http, simulator):
    simulator.inject("POST /predictions", 500, count=2)
    assert http.get("/account").status_code == 200
    assert [create(http).status_code for _ in range(3)] == [500, 500, 201]
    simulator.inject("get_account", 503, count=None)
    assert {http.get("/account").status_code for _ in range(4)} == {503}
    simulator.clear_injections()
    assert http.get("/account").status_code == 200


def test_inject_any_body_and_headers(http, simulator):
    """Raw bodies (the proxy's HTML 413), JSON bodies and headers are answered as given."""
    simulator.inject("create_file", 413, b"<html>too big</html>", content_type="text/html")
    simulator.inject("get_account", 429, {"detail": "slow", "retry_after": 2}, headers={"Retry-After": "2"})
    response = http.post("/files", files={"content": ("a", b"x")})
    assert (response.status_code, response.headers["content-type"], response.content) == (
        413,
        "text/html",
        b"<html>too big</html>",
    )
    throttled = http.get("/account")
    assert throttled.headers["retry-after"] == "2"
    assert throttled.headers["content-type"] == "application/problem+json"


def test_injected_answers_come_after_authentication(http, simulator):
    simulator.inject("*", 500)
    with http_for(simulator, token="nope") as anonymous:
        assert anonymous.get("/account").status_code == 401
    assert http.get("/account").status_code == 500


def test_a_connect_fault_is_never_processed(http, simulator):
    jobs = len(simulator.state.jobs)
    simulator.inject("create_prediction", fault="connect")
    with pytest.raises(httpx.ConnectError):
        create(http)
    assert len(simulator.state.jobs) == jobs
    assert simulator.requests[-1].fault == "connect"


def test_a_timeout_fault_is_processed_and_its_answer_lost(http, simulator):
    jobs = len(simulator.state.jobs)
    simulator.inject("create_prediction", fault="timeout")
    with pytest.raises(httpx.ReadTimeout):
        create(http)
    assert len(simulator.state.jobs) == jobs + 1


# --- rate limits -------------------------------------------------------------------------


def test_token_buckets_answer_429_with_retry_after_and_refill(clock):
    """With 60 creates a minute and a burst of 2, the third create in a row is throttled
    until a second has passed; other endpoints have their own bucket."""
    sim = Simulator(clock=clock, sleep=clock.sleep, rate_limits=RateLimits(create_per_minute=60, create_burst=2))
    with http_for(sim) as http:
        first, second, third = (create(http) for _ in range(3))
        assert [r.status_code for r in (first, second, third)] == [201, 201, 429]
        assert [r.headers["ratelimit-remaining"] for r in (first, second, third)] == ["1", "0", "0"]
        assert third.json() == {
            "detail": "Request was throttled. Your rate limit resets in ~1s.",
            "status": 429,
            "retry_after": 1,
        }
        assert third.headers["retry-after"] == "1"
        assert http.get("/account").status_code == 200
        clock.advance(1)
        assert create(http).status_code == 201


def test_buckets_are_per_account_and_configurable(clock):
    sim = Simulator(clock=clock, sleep=clock.sleep, rate_limits=RateLimits(other_per_minute=60, other_burst=1))
    with http_for(sim) as default, http_for(sim, "r8_sim_work") as work:
        assert [default.get("/account").status_code for _ in range(2)] == [200, 429]
        assert work.get("/account").status_code == 200
        sim.set_rate_limits(None, user="luaq-sim")
        assert {default.get("/account").status_code for _ in range(5)} == {200}
        assert work.get("/account").status_code == 429
        sim.set_rate_limits(None)
        assert work.get("/account").status_code == 200


def test_default_limits_are_replicates(http):
    """600 creates and 3000 other requests a minute, a minute's worth of burst."""
    assert create(http).headers["ratelimit-remaining"] == "599"
    assert http.get("/account").headers["ratelimit-remaining"] == "2999"
    limits = RateLimits()
    assert (limits.rate("create") * 60, limits.capacity("other")) == (600, 3000)


# --- latency, queueing, Prefer: wait -----------------------------------------------------


def test_latency_is_added_to_every_request(clock):
    sim = Simulator(clock=clock, sleep=clock.sleep, latency=0.2)
    with http_for(sim) as http:
        http.get("/account")
        http.get("/hardware")
    assert clock.sleeps == [0.2, 0.2]


def test_queued_predictions_wait_for_release(http, simulator, clock):
    """With keep_queued a prediction stays starting until released, then runs its course."""
    simulator.keep_queued = True
    prediction = create(http).json()
    clock.advance(100)
    assert http.get(f"/predictions/{prediction['id']}").json()["status"] == "starting"
    simulator.release(prediction["id"])
    clock.advance(0.5)
    assert http.get(f"/predictions/{prediction['id']}").json()["status"] == "processing"
    clock.advance(1)
    done = http.get(f"/predictions/{prediction['id']}").json()
    assert done["status"] == "succeeded" and done["output"] == "hello Alice"


def test_a_queued_prediction_past_its_cancel_after_is_aborted(http, simulator, clock):
    """Never started: aborted at its deadline, with completed_at and total_time only."""
    simulator.keep_queued = True
    prediction = create(http, SDXL_VERSION, {"prompt": "x"}, {"Cancel-After": "5s"}).json()
    clock.advance(5)
    aborted = http.get(f"/predictions/{prediction['id']}").json()
    assert aborted["status"] == "aborted"
    assert "started_at" not in aborted and aborted["completed_at"] == aborted["deadline"]
    assert aborted["metrics"] == {"total_time": 5.0}


def test_a_queued_prediction_canceled_is_canceled(http, simulator, clock):
    simulator.keep_queued = True
    prediction = create(http).json()
    clock.advance(1)
    canceled = http.post(f"/predictions/{prediction['id']}/cancel").json()
    assert canceled["status"] == "canceled" and "started_at" not in canceled


def test_prefer_wait_holds_a_get_until_the_prediction_finishes(http, simulator, clock):
    """GET /predictions/{id} with Prefer: wait=n is held like a create."""
    prediction = create(http).json()
    start = clock.now
    response = http.get(f"/predictions/{prediction['id']}", headers={"Prefer": "wait=30"})
    assert response.headers["preference-applied"] == "wait"
    assert response.json()["status"] == "succeeded"
    assert clock.now - start == pytest.approx(1.0)
