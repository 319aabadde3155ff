"""The limiter seam: rate waits and 429s reported per call, in-flight slots held around each
request, spend caps counted once per creating call before anything is sent."""

from __future__ import annotations

import contextlib
import json

import httpx
import pytest

from api_client import Account, CapExceeded, ReplicateClient, ReplicateProvider, RetryPolicy, simulated_accounts
from api_client.simulator import SimulatorTransport

TOKEN = "r8_secret_token_123"
CREATE = ("create_prediction", {"version": "v", "input": {}})
READ = ("get_prediction", {"prediction_id": "p"})


class Answers:
    """An httpx handler answering statuses from a list (429s with retry_after = 1 s)."""

    def __init__(self, *statuses: int, on_send=None) -> None:
        self.statuses = list(statuses)
        self.sent: list[httpx.Request] = []
        self.on_send = on_send

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if self.on_send is not None:
            self.on_send()
        status = self.statuses.pop(0)
        body = {"detail": "throttled", "status": 429, "retry_after": 1} if status == 429 else {"id": "p"}
        return httpx.Response(status, headers={"Content-Type": "application/json"}, content=json.dumps(body).encode())


class FullLimiter:
    """An in-memory limiter with every optional capability, recording what it is asked."""

    def __init__(self, *, waits=(), slot_wait=0.0, refuse_spend: CapExceeded | None = None) -> None:
        self.events: list[str] = []
        self.waits = list(waits)
        self.slot_wait = slot_wait
        self.refuse_spend = refuse_spend
        self.held = 0

    def acquire(self, account, bucket, *, timeout):
        self.events.append(f"acquire {bucket}")
        return self.waits.pop(0) if self.waits else None

    def throttled(self, account, bucket, retry_after):
        self.events.append(f"throttled {bucket}")

    @contextlib.contextmanager
    def in_flight(self, account, *, timeout):
        self.events.append("slot taken")
        self.held += 1
        try:
            yield self.slot_wait
        finally:
            self.held -= 1
            self.events.append("slot freed")

    def spend(self, account, operation):
        self.events.append(f"spend {operation}")
        if self.refuse_spend is not None:
            raise self.refuse_spend


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def client_with(handler, limiter) -> ReplicateClient:
    clock = Clock()
    retry = RetryPolicy(sleep=clock.sleep, clock=clock, random=lambda: 0.0)
    return ReplicateClient(Account("default", TOKEN), transport=httpx.MockTransport(handler), retry=retry,
                           limiter=limiter)  # fmt: skip


def test_waits_and_429s_are_reported_on_the_response():
    """The seconds the limiter waited (tokens and slots) and the 429s on the way come back
    with the response, for the call's integration_calls entry."""
    limiter = FullLimiter(waits=[0.25, 0.5], slot_wait=0.125)
    with client_with(Answers(429, 201), limiter) as client:
        response = client.call(*CREATE, timeout=30)
    assert response.rate_limit_wait_ms == 1000.0  # 0.25 + 0.125 + 0.5 + 0.125 s
    assert response.throttled == 1
    assert response.http_requests == 2


def test_a_final_429_carries_the_count_on_the_error():
    """A call that ends on 429 reports every 429 it got and its waits on the error."""
    limiter = FullLimiter(waits=[0.1])
    with (
        client_with(Answers(429, 429, 429, 429, 429), limiter) as client,
        pytest.raises(Exception) as caught,
    ):
        client.call(*READ, timeout=30)
    assert caught.value.throttled == 5
    assert caught.value.rate_limit_wait_ms == 100.0


def test_an_in_flight_slot_is_held_exactly_while_the_request_is_out():
    """The slot is taken after the rate token and before sending, and freed when the answer is in."""
    limiter = FullLimiter()
    held_while_sending = []
    handler = Answers(200, on_send=lambda: held_while_sending.append(limiter.held))
    with client_with(handler, limiter) as client:
        client.call(*READ)
    assert held_while_sending == [1]
    assert limiter.events == ["acquire other", "slot taken", "slot freed"]
    assert limiter.held == 0


def test_spend_is_counted_once_per_creating_call_not_per_attempt_nor_for_reads():
    """A create retried after a 429 is one spend; reads and other writes spend nothing."""
    limiter = FullLimiter()
    with client_with(Answers(429, 201, 200, 200), limiter) as client:
        client.call(*CREATE, timeout=30)
        client.call(*READ)
        client.call("cancel_prediction", {"prediction_id": "p"})
    assert [e for e in limiter.events if e.startswith("spend")] == ["spend create_prediction"]
    assert limiter.events[0] == "spend create_prediction"  # before its first attempt


def test_a_spend_refusal_sends_nothing():
    """A cap the limiter enforces refuses the call before any request or rate token."""
    refusal = CapExceeded("daily cap reached", limit="daily_predictions")
    limiter = FullLimiter(refuse_spend=refusal)
    handler = Answers(201)
    with client_with(handler, limiter) as client, pytest.raises(CapExceeded) as caught:
        client.call(*CREATE)
    assert caught.value is refusal and caught.value.error_type == "limit_exceeded"
    assert handler.sent == [] and limiter.events == ["spend create_prediction"]


def test_the_run_helper_spends_once_and_its_function_creates():
    """replicate.run creates one prediction (counted once), and its spec says it creates."""
    from api_client.simulator import Simulator

    limiter = FullLimiter()
    sim = Simulator(prediction_seconds=0.0)
    with ReplicateProvider(simulated_accounts(), transport=SimulatorTransport(sim), limiter=limiter) as provider:
        outcome = provider.call("run", "default", {"ref": "black-forest-labs/flux-schnell", "input": {"prompt": "x"}})
        creates = {spec.names[0] for spec in provider.functions() if spec.creates}
    assert outcome.value["status"] == "succeeded"
    assert [e for e in limiter.events if e.startswith("spend")] == ["spend create_model_prediction"]
    assert creates == {
        "create_prediction", "create_prediction_using_official_model", "create_prediction_using_deployment",
        "create_training", "run",
    }  # fmt: skip
    assert outcome.extra["throttled"] == 0 and outcome.extra["rate_limit_wait_ms"] == 0.0
