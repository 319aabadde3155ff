"""Spend caps: write calls and created predictions counted per run before anything is sent,
and a provider's own cap; each ends the run with limit_exceeded naming the cap."""

from __future__ import annotations

import pytest

from sandbox import Limits
from sandbox.testing import StubError, StubFunction, StubProvider

from .conftest import small

CREATE_LOOP = """
local n = 0
while true do
  pcall(app.integrations.replicate.create_prediction, { version = "v", input = { i = n } })
  n = n + 1
end
"""


def test_a_create_loop_stops_at_the_prediction_cap(run, provider):
    """A script creating predictions in a loop, even under pcall, ends at its cap: the
    provider saw exactly that many, and the refused call is recorded, unsent."""
    envelope = run(CREATE_LOOP, allow_writes=True, limits=small(predictions=3))
    assert envelope.status == "limit_exceeded"
    assert envelope.error.limit == "predictions"
    assert envelope.error.message == "prediction cap exceeded (3 predictions)"
    assert len(provider.calls) == 3
    *sent, refused = envelope.integration_calls
    assert [c["status"] for c in sent] == ["ok"] * 3
    assert refused["status"] == "error" and refused["limit"] == "predictions"
    assert refused["http_status"] is None and "nothing was sent" in refused["error"]


def test_write_calls_stop_at_the_write_cap(run, provider):
    """Writes that create nothing still count against the write cap; reads do not."""
    provider_with_cancel = StubProvider(
        StubFunction("cancel_prediction", kind="write", result={"status": "canceled"}),
        StubFunction("get_prediction", result={"status": "starting"}),
    )
    script = """
    for i = 1, 5 do app.integrations.replicate.get_prediction({}) end
    for i = 1, 10 do app.integrations.replicate.cancel_prediction({}) end
    """
    envelope = run(script, providers=[provider_with_cancel], allow_writes=True, limits=small(writes=2))
    assert envelope.status == "limit_exceeded"
    assert envelope.error.limit == "writes"
    assert envelope.error.message == "write cap exceeded (2 write calls)"
    assert [c.function for c in provider_with_cancel.calls] == ["get_prediction"] * 5 + ["cancel_prediction"] * 2


def test_refused_writes_do_not_count(run, provider):
    """A write refused for want of allow_writes is not a write call: the caps are untouched."""
    script = """
    for i = 1, 5 do pcall(app.integrations.replicate.create_prediction, { version = "v" }) end
    return "done"
    """
    envelope = run(script, limits=small(predictions=1, writes=1))
    assert envelope.status == "succeeded", envelope.error
    assert provider.calls == []


def test_a_providers_own_cap_ends_the_run_with_its_message(run):
    """A provider error of type limit_exceeded naming a cap ends the run (pcall cannot catch it)."""
    capped = StubProvider(
        StubFunction(
            "create_prediction",
            kind="write",
            creates=True,
            result=StubError(
                "daily prediction cap of account 'default' reached (5 created today, UTC)",
                error_type="limit_exceeded",
                limit="daily_predictions",
            ),
        )
    )
    envelope = run(CREATE_LOOP, providers=[capped], allow_writes=True)
    assert envelope.status == "limit_exceeded"
    assert envelope.error.to_dict()["limit"] == "daily_predictions"
    assert "daily prediction cap" in envelope.error.message
    assert len(capped.calls) == 1
    assert envelope.integration_calls[0]["limit"] == "daily_predictions"


def test_rate_limit_waits_and_429s_reach_integration_calls(run):
    """What a provider reports about waiting and 429s lands in the call's entry."""
    from sandbox import CallOutcome

    waited = StubProvider(
        StubFunction(
            "get_account", result=CallOutcome({"ok": True}, 200, {"rate_limit_wait_ms": 120.5, "throttled": 2})
        )
    )
    envelope = run("return app.integrations.replicate.get_account({}).ok", providers=[waited])
    assert envelope.result == [True]
    entry = envelope.integration_calls[0]
    assert entry["rate_limit_wait_ms"] == 120.5 and entry["throttled"] == 2


def test_a_job_may_lower_the_spend_caps_but_not_raise_them():
    """The caps' defaults are their maximums: asking for less works, asking for more is refused."""
    lowered = Limits.from_request({"predictions": 5, "writes": 10})
    assert (lowered.predictions, lowered.writes) == (5, 10)
    with pytest.raises(ValueError, match="predictions = 101 is above the maximum of 100 predictions"):
        Limits.from_request({"predictions": 101})


def test_a_zero_cap_means_nothing_may_be_created_or_written(run, provider):
    """A job may ask for no predictions (or no writes) at all; the other limits stay positive."""
    assert Limits.from_request({"predictions": 0, "writes": 0}).predictions == 0
    envelope = run(CREATE_LOOP, allow_writes=True, limits=small(predictions=0))
    assert envelope.status == "limit_exceeded" and envelope.error.limit == "predictions"
    assert provider.calls == []
    for key in ("instructions", "wall_clock_seconds", "calls"):
        with pytest.raises(ValueError, match="must be a positive"):
            Limits.from_request({key: 0})
    with pytest.raises(ValueError, match="0 or more"):
        Limits.from_request({"writes": -1})
