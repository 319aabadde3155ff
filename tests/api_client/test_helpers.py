"""The helpers run, wait and paginate, called through ReplicateProvider as the sandbox does."""

from __future__ import annotations

import pytest

from api_client import ArgumentError, NotFound, ReplicateProvider, RetryPolicy
from api_client.simulator import HELLO_VERSION, Simulator, SimulatorTransport

HELLO_REF = f"replicate/hello-world:{HELLO_VERSION}"


@pytest.fixture
def slow(clock):
    """A simulator whose predictions take 200 s."""
    return Simulator(prediction_seconds=200, clock=clock, sleep=clock.sleep)


@pytest.fixture
def naps(clock):
    """The provider's own sleeps (the simulator's Prefer: wait holds are not in it)."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.sleep(seconds)

    sleep.slept = slept  # type: ignore[attr-defined]
    return sleep


def provider_for(sim, accounts, clock, sleep=None, **kwargs) -> ReplicateProvider:
    return ReplicateProvider(
        accounts, transport=SimulatorTransport(sim), sleep=sleep or clock.sleep, clock=clock, **kwargs
    )


# --- run ---------------------------------------------------------------------------------


def test_run_waits_for_the_output_and_reports_its_requests(provider, simulator):
    """run returns the finished prediction; extra counts its HTTP requests."""
    outcome = provider.call("run", "default", {"ref": HELLO_REF, "input": {"text": "Bo"}}, timeout=120)
    assert (outcome.value["status"], outcome.value["output"]) == ("succeeded", "hello Bo")
    assert outcome.http_status == 201
    assert outcome.extra == {"http_requests": 1, "retries": [], "rate_limit_wait_ms": 0.0, "throttled": 0}
    assert simulator.requests[0].headers["prefer"] == "wait"


def test_run_without_waiting_returns_the_prediction_as_created(provider, simulator):
    """wait = false sends no Prefer header and does not poll."""
    outcome = provider.call("replicate_run", "default", {"ref": HELLO_REF, "input": {"text": "x"}, "wait": False})
    assert outcome.value["status"] == "starting"
    assert len(simulator.requests) == 1 and "prefer" not in simulator.requests[0].headers


def test_run_polls_until_the_prediction_is_terminal(slow, accounts, clock, naps):
    """After Prefer: wait gives up, run polls with backoff 0.5 s doubling to 5 s."""
    with provider_for(slow, accounts, clock, sleep=naps) as provider:
        outcome = provider.call("run", "default", {"ref": HELLO_REF, "input": {"text": "x"}}, timeout=1000)
    assert outcome.value["status"] == "succeeded"
    assert naps.slept[:6] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert outcome.extra["http_requests"] == 1 + len(naps.slept)
    assert [r.route for r in slow.requests][:2] == ["create_prediction", "get_prediction"]


def test_run_with_wait_seconds_stops_waiting_then(slow, accounts, clock):
    """wait = 3 waits at most 3 s (the held create asks for 2, keeping a second spare) and
    returns the prediction still running."""
    started = clock.now
    with provider_for(slow, accounts, clock) as provider:
        outcome = provider.call("run", "default", {"ref": HELLO_REF, "input": {"text": "x"}, "wait": 3}, timeout=100)
    assert outcome.value["status"] == "starting"
    assert slow.requests[0].headers["prefer"] == "wait=2"
    assert clock.now - started <= 3


def test_a_failed_prediction_is_returned_not_raised(provider):
    outcome = provider.call("run", "default", {"ref": HELLO_REF, "input": {"text": "x", "simulate_error": "boom"}})
    assert (outcome.value["status"], outcome.value["error"]) == ("failed", "boom")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing required argument 'ref' for replicate.run"),
        ({"ref": "justaname"}, "argument 'ref' for replicate.run must be \"owner/name\""),
        ({"ref": "a/b/c"}, 'must be "owner/name"'),
        ({"ref": "a/b", "wiat": True}, "unknown argument 'wiat' for replicate.run; did you mean 'wait'?"),
        ({"ref": "a/b", "wait": "yes"}, "argument 'wait' for replicate.run must be a boolean or a number"),
        ({"ref": "a/b", "wait": 0}, "must be true, false or a positive number"),
        ({"ref": "a/b", "input": "x"}, "argument 'input' for replicate.run must be a table"),
    ],
)
def test_run_arguments_are_checked_before_any_request(provider, simulator, args, message):
    with pytest.raises(ArgumentError, match=message.replace("(", r"\(").replace("?", r"\?")):
        provider.call("run", "default", args)
    assert list(simulator.requests) == []


# --- wait --------------------------------------------------------------------------------


def test_wait_accepts_an_id_or_a_table(provider, simulator, clock):
    """wait takes the prediction's id or the prediction itself; a held GET comes first."""
    created = provider.call("create_prediction", "default", {"version": HELLO_VERSION, "input": {"text": "a"}})
    for target in (created.value["id"], created.value):
        simulator.requests.clear()
        outcome = provider.call("wait", "default", {"prediction": target}, timeout=100)
        assert outcome.value["status"] == "succeeded"
        (held,) = simulator.requests
        assert held.headers["prefer"] in ("wait", "wait=60")


def test_wait_on_a_finished_prediction_sends_nothing(provider, simulator):
    done = {"id": "x", "status": "canceled"}
    outcome = provider.call("wait", "default", {"prediction": done})
    assert outcome.value == done and outcome.extra["http_requests"] == 0
    assert list(simulator.requests) == []


def test_wait_stops_within_the_jobs_remaining_wall_clock(slow, accounts, clock):
    """With 10 s left on the job, wait returns the running prediction before they are up,
    the held GET asking for no more than 9 s."""
    started = clock.now
    with provider_for(slow, accounts, clock) as provider:
        outcome = provider.call("wait", "default", {"prediction": "prediction-id"}, timeout=10)
    assert outcome.value["status"] == "processing"
    assert clock.now - started <= 10
    assert slow.requests[0].headers["prefer"] == "wait=9"
    assert all(r.time - started < 10 for r in slow.requests)


def test_wait_has_a_timeout_of_its_own(slow, accounts, clock):
    started = clock.now
    with provider_for(slow, accounts, clock) as provider:
        provider.call("wait", "default", {"prediction": "prediction-id", "timeout": 4}, timeout=1000)
    assert clock.now - started <= 4


def test_wait_with_a_fixed_interval(slow, accounts, clock, naps):
    with provider_for(slow, accounts, clock, sleep=naps) as provider:
        provider.call("wait", "default", {"prediction": "prediction-id", "timeout": 70, "interval": 2}, timeout=1000)
    assert set(naps.slept[:-1]) == {2} and len(naps.slept) >= 4


def test_wait_follows_a_training(provider, simulator):
    """A training (urls.get under /trainings/) is polled with get_training."""
    training = provider.call("get_training", "default", {"training_id": "training-id"}).value
    training["status"] = "processing"
    provider.call("wait", "default", {"prediction": training})
    assert simulator.requests[-1].route == "get_training"


def test_each_poll_goes_through_the_limiter_and_the_retry_policy(slow, accounts, clock):
    """Polls take limiter slots; a 503 on a poll is retried and reported in extra."""
    acquired = []

    class Limiter:
        def acquire(self, account, bucket, *, timeout):
            acquired.append(bucket)

    slow.inject("get_prediction", 503)
    retry = RetryPolicy(sleep=clock.sleep, clock=clock, random=lambda: 0.0)
    with provider_for(slow, accounts, clock, limiter=Limiter(), retry=retry) as provider:
        outcome = provider.call("run", "default", {"ref": HELLO_REF, "input": {"text": "x"}}, timeout=1000)
    assert outcome.value["status"] == "succeeded"
    assert len(acquired) == outcome.extra["http_requests"] == len(slow.requests)
    assert acquired[0] == "create" and set(acquired[1:]) == {"other"}
    assert outcome.extra["retries"] == [
        {"operation": "get_prediction", "attempt": 1, "http_status": 503, "waited_s": 0.5}
    ]


def test_an_error_while_waiting_carries_the_requests_so_far(slow, accounts, clock):
    """A poll that fails for good raises, with every request and retry of the helper."""
    slow.inject("get_prediction", 404, {"detail": "gone", "status": 404})
    with provider_for(slow, accounts, clock) as provider, pytest.raises(NotFound) as caught:
        provider.call("run", "default", {"ref": HELLO_REF, "input": {"text": "x"}, "wait": 5}, timeout=100)
    assert caught.value.http_requests == 2 and caught.value.retries == []
    assert [r.route for r in slow.requests] == ["create_prediction", "get_prediction"]


# --- paginate ----------------------------------------------------------------------------


def test_paginate_collects_every_page(accounts, clock):
    sim = Simulator(clock=clock, sleep=clock.sleep, page_size=2)
    with provider_for(sim, accounts, clock) as provider:
        for text in "abcde":
            provider.call("create_prediction", "default", {"version": HELLO_VERSION, "input": {"text": text}})
            clock.advance(1)
        sim.requests.clear()
        outcome = provider.call("paginate", "default", {"operation": "list_predictions"})
        assert [p["input"]["text"] for p in outcome.value] == list("edcba")
        assert outcome.extra["http_requests"] == 3
        limited = provider.call("paginate", "default", {"operation": "replicate_list_predictions", "max_pages": 2})
        assert len(limited.value) == 4


def test_paginate_passes_the_arguments_to_every_page(accounts, clock):
    sim = Simulator(clock=clock, sleep=clock.sleep, page_size=3)
    with provider_for(sim, accounts, clock) as provider:
        args = {"sort_by": "model_created_at", "sort_direction": "asc"}
        models = provider.call("paginate", "default", {"operation": "list_public_models", "args": args}).value
    assert len(models) == len([m for m in sim.state.models.values() if m.visibility == "public"])
    assert all(r.query["sort_by"] == "model_created_at" for r in sim.requests)


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ("list_hardware", "list_hardware does not return pages"),
        ("list_predictoins", "did you mean 'list_predictions'"),
    ],
)
def test_paginate_needs_a_paginated_operation(provider, operation, message):
    with pytest.raises(ArgumentError, match=message):
        provider.call("paginate", "default", {"operation": operation})


# --- verify_webhook ----------------------------------------------------------------------


def test_verify_webhook_makes_no_request(provider, simulator):
    outcome = provider.call(
        "verify_webhook", "default", {"headers": {}, "body": "{}", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    )
    assert outcome.value is False
    assert outcome.extra == {"http_requests": 0, "retries": []} and outcome.http_status is None
    assert list(simulator.requests) == []
