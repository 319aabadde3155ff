"""Fixtures for the sandbox tests: a Replicate-like stub provider, a fake clock, and a
``run`` helper that runs a script against them (never sleeping for real)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandbox import Envelope, Limits, run_script
from sandbox.testing import FakeClock, StubError, StubFunction, StubProvider

PREDICTION_SCHEMA = {
    "type": "object",
    "properties": {
        "version": {"type": "string"},
        "input": {"type": "object"},
        "webhook_events_filter": {"type": "array", "items": {"type": "string"}},
        "metadata": {
            "type": "object",
            "properties": {"tags": {"type": "array"}, "extra": {"type": "object"}},
        },
    },
}


@pytest.fixture
def provider() -> StubProvider:
    """A small Replicate look-alike: reads, a write with a schema, and a failing read."""
    return StubProvider(
        StubFunction(
            ("get_authenticated_account", "get_account", "replicate_get_account"),
            title="Get the authenticated account",
            result={"type": "user", "username": "alice", "github_url": None},
            doc="replicate.get_authenticated_account\nReturns the account behind the token.",
        ),
        StubFunction(
            ("get_prediction", "replicate_get_prediction"),
            title="Get a prediction",
            result=StubError(
                "404 Not Found: prediction not found",
                status=404,
                title="Not Found",
                detail="prediction not found",
            ),
            args_schema={
                "type": "object",
                "properties": {"prediction_id": {"type": "string"}},
                "required": ["prediction_id"],
            },
        ),
        StubFunction(
            ("create_prediction", "replicate_create_prediction"),
            kind="write",
            title="Create a prediction",
            result=lambda args, account: {"id": "p1", "status": "starting", "sent": dict(args)},
            args_schema=PREDICTION_SCHEMA,
            http_status=201,
            creates=True,
        ),
        StubFunction(
            ("list_predictions", "replicate_list_predictions"),
            title="List predictions",
            result={"next": None, "results": [{"id": "a"}, {"id": "b"}]},
        ),
        accounts=("default", "work"),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def run(provider: StubProvider, clock: FakeClock) -> Callable[..., Envelope]:
    """Run a script against ``provider`` with the fake clock (overridable by keyword)."""

    def run(source: str, **kwargs: Any) -> Envelope:
        kwargs.setdefault("providers", [provider])
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sleep", clock.sleep)
        return run_script(source, **kwargs)

    return run


def small(**changes: Any) -> Limits:
    """Default limits with some of them changed."""
    return Limits.DEFAULT.replace(**changes)
