"""A real `luaq worker` (a supervisor and two worker processes) serves /metrics, /healthz
and /readyz: the counts add up over its processes, and liveness fails when one process's
consumer stops consuming."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request

import pytest

from tests.conftest import wait_until
from worker.app import create_app
from worker.health import probe

pytestmark = [pytest.mark.redis, pytest.mark.e2e]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    """The samples of /metrics as {'name{labels}': value} (labels sorted as exposed)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(luaq_[a-z0-9_]+(?:\{[^}]*\})?) (\S+)", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def start(workers, port: int, **env: str) -> None:
    workers.start(1, 2, "--processes", "2", env={"LUAQ_METRICS_PORT": str(port), **env})

    def both_consuming() -> bool:
        live, body = probe(port, "/healthz")
        return live and [p["state"] for p in body["processes"]] == ["consuming", "consuming"]

    wait_until(both_consuming, timeout=60, message="both worker processes to consume")
    assert probe(port, "/readyz")[0]


def test_metrics_count_jobs_calls_limits_and_rate_limit_waits(workers, client):
    """After a few jobs, /metrics holds the right counts by status, integration call, limit
    hit and rate-limit wait, summed over both worker processes."""
    port = free_port()
    start(workers, port, REPLICATE_API_TOKEN_WORK="r8_test",
          LUAQ_RATE_LIMITS=json.dumps({"work": {"other": [60, 1]}}))  # fmt: skip
    get_account = "app.integrations.replicate.get_account({})"
    jobs = [
        {"script": f"{get_account} return 1"},
        {"script": f"{get_account} {get_account} return 2"},
        {"script": "return 3"},
        {"script": "error('boom')"},
        {"script": "while true do end", "limits": {"instructions": 10_000}},
        # one token a second for account work: the 2nd and 3rd calls wait for theirs
        {"script": "for i = 1, 3 do app.integrations.replicate.work.get_account({}) end return 4"},
    ]
    ids = [client.submit({**job, "simulate": True}).job_id for job in jobs]
    statuses = [client.wait(job_id, timeout=60)["status"] for job_id in ids]
    assert statuses == ["succeeded"] * 3 + ["failed", "limit_exceeded", "succeeded"]

    expected = {
        'luaq_jobs_total{status="succeeded"}': 4,
        'luaq_jobs_total{status="failed"}': 1,
        'luaq_jobs_total{status="limit_exceeded"}': 1,
        'luaq_integration_calls_total{account="default",operation="replicate.get_authenticated_account",status="ok"}': 3,
        'luaq_integration_calls_total{account="work",operation="replicate.get_authenticated_account",status="ok"}': 3,
        'luaq_limit_hits_total{limit="instructions"}': 1,
        'luaq_rate_limit_waits_total{account="work",bucket="other"}': 2,
        "luaq_job_duration_seconds_count": 6,
        "luaq_queue_wait_seconds_count": 6,
        "luaq_jobs_running": 0,
        "luaq_jobs_waiting": 0,
        'luaq_queue_depth{queue="luaq"}': 0,
    }

    def counts_match() -> bool:
        samples = scrape(port)
        return all(samples.get(name) == count for name, count in expected.items())

    wait_until(counts_match, timeout=20, message=f"the counts {expected}, last scrape: {scrape(port)}")
    samples = scrape(port)
    assert samples["luaq_instructions_total"] >= 10_000
    assert 'luaq_rate_limit_waits_total{account="default",bucket="other"}' not in samples


def test_liveness_fails_for_a_worker_process_whose_consumer_stopped(workers, client, e2e_settings):
    """Cancel one process's consumer (Celery remote control): /healthz turns 503 naming it
    while /readyz stays 200 and jobs still run on the other; consuming again makes it live."""
    port = free_port()
    start(workers, port, LUAQ_LIVENESS_TIMEOUT="2")
    live, body = probe(port, "/healthz")
    assert live, body
    stopped, other = (process["name"] for process in body["processes"])

    app = create_app(e2e_settings)
    replies = app.control.cancel_consumer("luaq", destination=[stopped], reply=True, timeout=5)
    assert replies == [{stopped: {"ok": "no longer consuming from luaq"}}]

    wait_until(lambda: not probe(port, "/healthz")[0], timeout=20, message="/healthz to fail")
    live, body = probe(port, "/healthz")
    states = {process["name"]: process["state"] for process in body["processes"]}
    assert states == {stopped: "stalled", other: "consuming"}
    assert stopped in body["reason"]
    ready, body = probe(port, "/readyz")
    assert ready, body
    job = client.submit({"script": "return 'still running'"})
    assert client.wait(job.job_id, timeout=60)["result"] == ["still running"]

    app.control.add_consumer("luaq", destination=[stopped], reply=True, timeout=5)
    wait_until(lambda: probe(port, "/healthz")[0], timeout=20, message="/healthz to recover")
