"""The simulator served over real HTTP on localhost, and reached through AsyncClient."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import httpx
import pytest

from api_client import ReplicateClient, simulated_accounts
from api_client.simulator import Simulator, SimulatorTransport, serve

AUTH = {"Authorization": "Bearer r8_sim_default"}


@pytest.fixture
def server():
    """A simulator served on a free loopback port, stopped after the test."""
    server = serve(Simulator(public_base_url=None, prediction_seconds=0.2), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_port_zero_binds_a_free_port_and_reports_it(server):
    """serve(port=0) returns a bound server whose port and base URL are real."""
    assert server.port > 0
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"


def test_a_real_httpx_client_talks_to_the_served_simulator(server):
    """Over TCP, the account, a 401 and a QUERY all answer as in-process."""
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.get("/account", headers=AUTH).json()["username"] == "luaq-sim"
        assert http.get("/account").status_code == 401
        found = http.request("QUERY", "/models", content=b"flux", headers={**AUTH, "Content-Type": "text/plain"}).json()
        assert [m["name"] for m in found["results"]] == ["flux-schnell"]


def test_answers_come_without_a_delayed_ack_stall(server):
    """Headers and body are written separately; with Nagle's algorithm on, each answer
    waited ~40 ms for the client's delayed ACK. A keep-alive connection answers in
    well under that."""
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=10) as http:
        http.get("/account")  # the connection is open
        times = []
        for _ in range(15):
            started = time.perf_counter()
            assert http.get("/account").status_code == 200
            times.append(time.perf_counter() - started)
    assert statistics.median(times) < 0.02, times


def test_urls_in_answers_point_back_at_the_server(server):
    """With public_base_url=None, prediction URLs use the server's own address."""
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=10) as http:
        prediction = http.post(
            "/predictions",
            json={
                "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
                "input": {"text": "a"},
            },
        ).json()
        assert prediction["urls"]["get"] == f"{server.base_url}/predictions/{prediction['id']}"
        assert http.get(prediction["urls"]["get"]).json()["id"] == prediction["id"]


def test_the_replicate_client_works_over_http(server):
    """ReplicateClient with the server's base URL uploads a file and waits on a prediction."""
    account = simulated_accounts(base_url=server.base_url)["default"]
    with ReplicateClient(account, timeout=10) as client:
        file = client.call("create_file", {"content": b"\x00\x01binary", "filename": "b.bin"})
        assert file.value["size"] == 8
        done = client.call(
            "create_prediction",
            {
                "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
                "input": {"text": "Bob"},
                "Prefer": "wait=5",
            },
        )
        assert done.headers["preference-applied"] == "wait"
        assert done.value["status"] == "succeeded" and done.value["output"] == "hello Bob"


def test_the_transport_also_serves_async_clients(simulator):
    """SimulatorTransport is an AsyncBaseTransport too."""

    async def main():
        async with httpx.AsyncClient(
            transport=SimulatorTransport(simulator),
            base_url="https://api.replicate.com/v1",
            headers=AUTH,
        ) as http:
            return (await http.get("/predictions/prediction-id")).json()

    assert asyncio.run(main())["id"] == "prediction-id"


def test_an_injected_fault_drops_the_connection_over_http(server):
    """Over TCP a fault closes the connection without an answer; the next request works."""
    server.simulator.inject("get_account", fault="timeout")
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/account", headers=AUTH)
        assert http.get("/account", headers=AUTH).status_code == 200


def test_hundreds_of_clients_can_connect_at_once_before_any_is_accepted():
    """The listen backlog holds a burst of connections (a worker's jobs all starting at
    once): with the standard library's 5, the kernel dropped the rest of the burst and
    their connects stalled for a second or more, or were reset."""
    import socket

    server = serve(Simulator(public_base_url=None), "127.0.0.1", 0)  # bound, not accepting yet
    clients = []
    try:
        for _ in range(200):
            client = socket.create_connection(("127.0.0.1", server.port), timeout=0.5)
            clients.append(client)
        assert len(clients) == 200
    finally:
        for client in clients:
            client.close()
        server.server_close()
