"""The retry policy at the client's single send point: what is retried, how long it waits,
the caller's deadline, and how every retry is reported."""

from __future__ import annotations

import json

import httpx
import pytest

from api_client import (
    NO_RETRY,
    Account,
    APIError,
    RateLimited,
    ReplicateClient,
    RetryPolicy,
    TransportError,
)
from api_client.simulator import HELLO_VERSION, Simulator, SimulatorTransport

TOKEN = "r8_retry_token"
CREATE = ("create_prediction", {"version": "v", "input": {}})
READ = ("get_prediction", {"prediction_id": "p"})


class Script:
    """An httpx handler answering from a list: a status, a (status, body, headers) tuple or
    an exception to raise; it records what it was sent."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            answer = (answer, {"detail": "x"} if answer >= 400 else {"ok": True}, {})
        status, body, headers = answer
        return httpx.Response(status, json=body, headers=headers)


def client_for(handler, clock, **policy) -> ReplicateClient:
    retry = RetryPolicy(sleep=clock.sleep, clock=clock, random=lambda: 0.0, **policy)
    return ReplicateClient(Account("default", TOKEN), transport=httpx.MockTransport(handler), retry=retry)


def throttled(retry_after=None, header=None, detail="Request was throttled."):
    body = {"detail": detail, "status": 429}
    if retry_after is not None:
        body["retry_after"] = retry_after
    return (429, body, {"Retry-After": header} if header else {})


@pytest.mark.parametrize(
    ("failure", "read", "retried"),
    [
        (429, True, True),
        (429, False, True),
        (500, True, True),
        (503, True, True),
        (503, False, False),
        (404, True, False),
        (422, False, False),
        (httpx.ReadTimeout("slow"), True, True),
        (httpx.ReadTimeout("slow"), False, False),
        (httpx.RemoteProtocolError("reset"), False, False),
        (httpx.ConnectError("refused"), True, True),
        (httpx.ConnectError("refused"), False, True),
        (httpx.ConnectTimeout("no route"), False, True),
    ],
)
def test_what_is_retried(clock, failure, read, retried):
    """Reads retry on 429, 5xx, timeouts and connection errors; writes only on 429 and
    connection failures that provably sent nothing."""
    script = Script(failure, 200)
    operation, args = READ if read else CREATE
    with client_for(script, clock) as client:
        if retried:
            assert client.call(operation, args).http_status == 200
        else:
            with pytest.raises((APIError, TransportError)):
                client.call(operation, args)
    assert len(script.sent) == (2 if retried else 1)


def test_backoff_is_exponential_jittered_and_capped(clock):
    """Without retry_after the waits double from base up to cap, less up to jitter."""
    with client_for(Script(503), clock, max_attempts=6, base=0.5, cap=3.0) as client, pytest.raises(APIError):
        client.call(*READ)
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]
    policy = RetryPolicy(base=1, cap=10, jitter=0.25, random=lambda: 1.0)
    assert [policy.backoff(n) for n in (1, 2, 3)] == [0.75, 1.5, 3.0]


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        (throttled(retry_after=2), 2),
        (throttled(header="3"), 3),
        (throttled(detail="Request was throttled. Your rate limit resets in ~4s."), 4),
        (throttled(retry_after=1, header="9"), 1),
    ],
)
def test_retry_after_from_body_header_or_detail_is_honoured(clock, answer, wait):
    """The server's wait (body, then Retry-After, then "~Ns") replaces the backoff."""
    with client_for(Script(answer, 201), clock) as client:
        response = client.call(*CREATE)
    assert clock.sleeps == [wait]
    assert response.retries == [{"operation": "create_prediction", "attempt": 1, "http_status": 429, "waited_s": wait}]
    assert response.http_requests == 2


def test_retry_after_as_an_http_date_is_honoured(clock):
    """A Retry-After HTTP date is turned into seconds from now."""
    date = "Wed, 21 Oct 2099 07:28:00 GMT"
    policy = {"cap": 10**10}
    with client_for(Script(throttled(header=date), 200), clock, **policy) as client:
        client.call(*READ)
    assert clock.sleeps[0] > 60


def test_a_wait_longer_than_the_time_left_raises_at_once(clock):
    """When retry_after does not fit in the caller's timeout, nothing sleeps: the 429 is
    raised at once."""
    script = Script(throttled(retry_after=10), 201)
    with client_for(script, clock) as client, pytest.raises(RateLimited) as caught:
        client.call(*CREATE, timeout=5)
    assert clock.sleeps == [] and len(script.sent) == 1
    assert caught.value.retry_after == 10
    assert (caught.value.retries, caught.value.http_requests) == ([], 1)


def test_a_wait_longer_than_the_cap_raises_at_once(clock):
    """A server asking for more than cap seconds gets no retry."""
    with client_for(Script(throttled(retry_after=3600)), clock) as client, pytest.raises(RateLimited):
        client.call(*READ)
    assert clock.sleeps == []


def test_retries_stop_at_the_deadline(clock):
    """Backoff keeps going only while the waits fit in the timeout."""
    with client_for(Script(503), clock, max_attempts=10) as client, pytest.raises(APIError) as caught:
        client.call(*READ, timeout=4)
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert [r["waited_s"] for r in caught.value.retries] == [0.5, 1.0, 2.0]
    assert caught.value.http_requests == 4


def test_after_max_attempts_the_last_error_carries_every_retry(clock):
    """The error raised after the last attempt lists the attempts retried before it."""
    script = Script(500, 502, httpx.ConnectError("refused"))
    with client_for(script, clock, max_attempts=3) as client, pytest.raises(TransportError) as caught:
        client.call(*READ)
    assert caught.value.retries == [
        {"operation": "get_prediction", "attempt": 1, "http_status": 500, "waited_s": 0.5},
        {"operation": "get_prediction", "attempt": 2, "http_status": 502, "waited_s": 1.0},
    ]
    assert caught.value.http_requests == 3
    assert caught.value.sent is False and caught.value.reason == "ConnectError"


def test_no_retry_policy_sends_once(clock):
    """NO_RETRY gives up after the first attempt."""
    script = Script(503, 200)
    with (
        ReplicateClient(Account("default", TOKEN), transport=httpx.MockTransport(script), retry=NO_RETRY) as client,
        pytest.raises(APIError),
    ):
        client.call(*READ)
    assert len(script.sent) == 1


def test_the_same_body_is_sent_again(clock):
    """A retried write sends identical bytes."""
    script = Script(throttled(retry_after=1), 201)
    with client_for(script, clock) as client:
        client.call("create_prediction", {"version": "v", "input": {"a": 1}})
    first, second = (r.content for r in script.sent)
    assert first == second and json.loads(first) == {"version": "v", "input": {"a": 1}}


class Limiter:
    def __init__(self, refuse: Exception | None = None) -> None:
        self.acquired: list[float | None] = []
        self.throttles: list[tuple[str, str, float | None]] = []
        self.refuse = refuse

    def acquire(self, account, bucket, *, timeout):
        self.acquired.append(timeout)
        if self.refuse is not None:
            raise self.refuse

    def throttled(self, account, bucket, retry_after):
        self.throttles.append((account, bucket, retry_after))


def test_each_attempt_asks_the_limiter_and_429s_are_reported_to_it(clock):
    """Every attempt takes a limiter slot with the time left; a 429 is passed to a limiter
    that wants to know."""
    limiter = Limiter()
    retry = RetryPolicy(sleep=clock.sleep, clock=clock, random=lambda: 0.0)
    transport = httpx.MockTransport(Script(throttled(retry_after=2), 201))
    with ReplicateClient(Account("default", TOKEN), transport=transport, retry=retry, limiter=limiter) as client:
        client.call(*CREATE, timeout=30)
    assert limiter.acquired == [30, 28]
    assert limiter.throttles == [("default", "create", 2)]


def test_a_limiter_refusal_is_not_retried(clock):
    """The limiter already waited all it could: its refusal is raised, nothing is sent."""
    refusal = RateLimited(429, operation="get_prediction", retry_after=1)
    limiter = Limiter(refuse=refusal)
    script = Script(200)
    retry = RetryPolicy(sleep=clock.sleep, clock=clock)
    with (
        ReplicateClient(Account("d", TOKEN), transport=httpx.MockTransport(script), retry=retry, limiter=limiter) as c,
        pytest.raises(RateLimited) as caught,
    ):
        c.call(*READ)
    assert caught.value is refusal and caught.value.http_requests == 0
    assert script.sent == [] and clock.sleeps == []


# --- against the simulator's faults -------------------------------------------------------


def simulated(clock, **kwargs):
    sim = Simulator(clock=clock, sleep=clock.sleep, **kwargs)
    retry = RetryPolicy(sleep=clock.sleep, clock=clock, random=lambda: 0.0)
    client = ReplicateClient(Account("default", "r8_sim_default"), transport=SimulatorTransport(sim), retry=retry)
    return sim, client


def test_a_write_whose_answer_was_lost_is_not_sent_again(clock):
    """A timeout after the simulator handled the create is not retried: the prediction
    exists, and a second one would be a duplicate."""
    sim, client = simulated(clock)
    sim.inject("create_prediction", fault="timeout")
    before = len(sim.state.jobs)
    with client, pytest.raises(TransportError) as caught:
        client.call("create_prediction", {"version": HELLO_VERSION, "input": {"text": "a"}})
    assert caught.value.sent is None
    assert len(sim.state.jobs) == before + 1 and len(sim.requests) == 1


def test_a_write_refused_before_connecting_is_sent_again(clock):
    """A connection refused before sending is retried; the prediction is created once."""
    sim, client = simulated(clock)
    sim.inject("create_prediction", fault="connect")
    before = len(sim.state.jobs)
    with client:
        response = client.call("create_prediction", {"version": HELLO_VERSION, "input": {"text": "a"}})
    assert response.retries == [
        {"operation": "create_prediction", "attempt": 1, "error": "ConnectError", "waited_s": 0.5}
    ]
    assert len(sim.state.jobs) == before + 1


def test_a_read_timeout_is_retried(clock):
    """A read whose answer was lost is simply read again."""
    sim, client = simulated(clock)
    sim.inject("GET /predictions/{prediction_id}", fault="timeout")
    with client:
        response = client.call("get_prediction", {"prediction_id": "prediction-id"})
    assert response.value["id"] == "prediction-id"
    assert [r["error"] for r in response.retries] == ["ReadTimeout"]


def test_the_simulators_token_bucket_is_waited_out(clock):
    """A create over the simulated per-minute limit waits for the next token and succeeds."""
    from api_client.simulator import RateLimits

    sim, client = simulated(clock, rate_limits=RateLimits(create_per_minute=60, create_burst=1))
    with client:
        for text in ("a", "b"):
            client.call("create_prediction", {"version": HELLO_VERSION, "input": {"text": text}})
    assert [r.status for r in sim.requests] == [201, 429, 201]
    assert clock.sleeps == [1]


def test_a_retried_request_asks_the_server_to_wait_only_for_the_time_left(clock):
    """Prefer: wait=N is shortened again on a retry, as the deadline is nearer."""
    script = Script(throttled(retry_after=5), 201)
    seen = []

    def handler(request):
        seen.append(request.headers["prefer"])  # the request object is reused by the retry
        return script(request)

    with client_for(handler, clock) as client:
        client.call("create_prediction", {"version": "v", "input": {}, "prefer": "wait=30"}, timeout=20)
    assert seen == ["wait=19", "wait=14"]
