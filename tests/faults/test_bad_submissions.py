"""Done when 5: each kind of bad submission is rejected at submission with its own message,
and one that reaches a worker by another path (a raw message naming a job whose stored
request does not validate) is recorded `rejected`."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace

import pytest

from tests.e2e.conftest import LUAQ, luaq_env
from tests.faults.conftest import FAULT_ENV, wait_final
from worker import keys
from worker.client import LuaqClient, publish
from worker.job import JobRequest, SubmissionError

BAD = [
    ("wrong type", {"script": "return 1", "args": [1, 2]}, "args must be a JSON object"),
    ("wrong type", {"script": "return 1", "allow_writes": "yes"}, "allow_writes must be true or false"),
    ("wrong type", {"script": 42}, "script must be a string of Lua source"),
    ("unknown account", {"script": "return 1", "account": "wrok"}, "unknown account 'wrok'"),
    ("script too large", {"script": "return 1 --" + "x" * 2000}, "the script is 2011 bytes; the limit is 1024"),
    (
        "args too large",
        {"script": "return 1", "args": {"s": "x" * 2000}},
        "args is 2009 bytes as JSON; the limit is 1024",
    ),
    ("unknown field", {"script": "return 1", "priorty": 3}, "unknown field(s) in submission: priorty"),
    ("bad on_redelivery", {"script": "return 1", "on_redelivery": "always"}, "on_redelivery must be 'lost' or 'rerun'"),
]


@pytest.fixture
def small_limits_client(fault_settings) -> LuaqClient:
    settings = replace(fault_settings, max_script_bytes=1024, max_args_bytes=1024)
    client = LuaqClient.from_settings(settings)
    client.store.announce_accounts(["default", "work"])  # as a running worker does
    yield client
    client.close()


@pytest.mark.parametrize(("kind", "submission", "message"), BAD, ids=[f"{k}-{n}" for n, (k, *_) in enumerate(BAD)])
def test_bad_submissions_are_rejected_with_their_own_message(small_limits_client, kind, submission, message):
    with pytest.raises(SubmissionError) as raised:
        small_limits_client.submit(submission)
    assert message in str(raised.value)
    assert not small_limits_client.store.redis.keys("luaq:job:*"), "nothing was stored"


def test_invalid_json_is_rejected_by_the_client_and_the_cli(small_limits_client, fault_settings, tmp_path):
    with pytest.raises(SubmissionError, match="the submission is not valid JSON"):
        small_limits_client.submit_json('{"script": "return 1",}')
    request = tmp_path / "bad.json"
    request.write_text('{"script": ')
    done = subprocess.run([*LUAQ, "submit", "--request", str(request), "--json"], env=luaq_env(fault_settings),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    envelope = json.loads(done.stdout)
    assert envelope["status"] == "rejected" and "not valid JSON" in envelope["error"]["message"]


def test_a_bad_request_reaching_a_worker_by_another_path_is_recorded_rejected(fault_workers, fault_client):
    fault_workers.start(1, 2, env=FAULT_ENV)
    request = JobRequest.from_dict({"script": "return 1", "job_id": "smuggled"}, fault_client.settings)
    fault_client.store.create(request)
    stored = json.loads(fault_client.store.redis.hget(keys.job("smuggled"), "request"))
    fault_client.store.redis.hset(keys.job("smuggled"), "request", json.dumps({**stored, "allow_writes": "yes"}))
    publish(fault_client.app, fault_client.settings, request)  # the raw Celery message
    envelope = wait_final(fault_client, ["smuggled"], timeout=30)["smuggled"]
    assert envelope["status"] == "rejected" and envelope["error"]["type"] == "rejected", envelope
    assert "allow_writes must be true or false" in envelope["error"]["message"]
