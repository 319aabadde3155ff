"""The HTTP clients behind a worker's providers: one per job thread, one TLS context."""

from __future__ import annotations

import threading

from worker.providers import _simulator_transport, build_providers, thread_http_client


def _pool(client):
    return client._transport._pool


def test_each_thread_keeps_its_own_client_and_all_share_one_tls_context():
    mine = thread_http_client()
    assert thread_http_client() is mine  # kept from one job to the next
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(thread_http_client()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    assert _pool(theirs[0])._ssl_context is _pool(mine)._ssl_context
    assert _pool(mine)._max_connections <= 4  # a pool that never grows to hundreds of connections


def test_a_jobs_provider_calls_through_its_threads_client(settings):
    provider = build_providers(settings, simulate=True)[0]
    transport = _simulator_transport(settings.simulator_prediction_seconds)
    assert provider._http is thread_http_client(transport)
    assert provider._http is not thread_http_client()  # another transport, another client


def test_threads_starting_at_once_build_one_tls_context(monkeypatch):
    """Hundreds of job threads make their clients at once: one context is built, not one
    each (building one takes ~15 ms)."""
    import time

    from worker import providers

    built = []

    def slow_context():
        built.append(1)
        time.sleep(0.05)  # long enough for every thread below to arrive while it builds
        return object()

    monkeypatch.setattr(providers.httpx, "create_ssl_context", slow_context)
    providers._built_tls_context.cache_clear()
    try:
        start = threading.Barrier(20)
        contexts = []

        def make() -> None:
            start.wait()
            contexts.append(providers._tls_context())

        threads = [threading.Thread(target=make) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(built) == 1 and len({id(context) for context in contexts}) == 1 and len(contexts) == 20
    finally:
        providers._built_tls_context.cache_clear()
