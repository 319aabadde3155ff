"""Drivers: run a :class:`ScriptRun` to its end by performing what it waits for.

A run alternates between Lua (``run.start()`` / ``run.resume(outcome)``, CPU-bound, bounded
by the limits) and waiting (a :class:`ProviderCall` or a :class:`Sleep`). This module's
:func:`drive` waits synchronously, with :func:`perform`. An asyncio driver keeps the same
loop and replaces only the waiting step::

    async def drive_async(run, *, clock, perform_async):
        step = run.start()
        while isinstance(step, Pending):
            step = run.resume(await perform_async(step.request))
        return step.envelope

where ``perform_async`` awaits ``asyncio.sleep(request.seconds)`` for a ``Sleep`` and
``asyncio.to_thread(request.provider.call, ...)`` (or an async provider) for a
``ProviderCall``, returning the same :class:`CallResult` / :class:`Slept` values. Many
runs can then wait concurrently on one event loop; each ``start``/``resume`` is a short
synchronous slice.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from ._bridge import CallResult, Outcome, ProviderCall, Request, Sleep, Slept
from ._envelope import Envelope
from ._limits import Limits
from ._provider import Provider
from ._runtime import Pending, ScriptRun

CANCEL_POLL_SECONDS = 0.05  # how often a driver waiting on a call looks at a plain cancel event
OVERRUN_GRACE_SECONDS = 0.1  # a call past its time gets this long to report its own timeout first


class Cancellation(threading.Event):
    """A cancel event that also wakes the calls waiting on it, so that a waiting job costs
    no CPU: a driver waits on one event, set by its call finishing or by the cancel,
    instead of looking at the cancel every few milliseconds."""

    def __init__(self) -> None:
        super().__init__()
        self._waiters: set[threading.Event] = set()
        self._waiters_lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._waiters_lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.set()

    @contextlib.contextmanager
    def waking(self, waiter: threading.Event) -> Iterator[None]:
        """While inside, setting this cancel also sets ``waiter``."""
        with self._waiters_lock:
            self._waiters.add(waiter)
        if self.is_set():
            waiter.set()
        try:
            yield
        finally:
            with self._waiters_lock:
                self._waiters.discard(waiter)


class CancelEvent(Protocol):
    """A cancel signal a driver can also wait on (``threading.Event`` is one)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def perform(
    request: Request,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Perform one request, blocking. A provider's exception is part of the outcome."""
    if isinstance(request, Sleep):
        if request.seconds > 0:
            sleep(request.seconds)
        return Slept()
    assert isinstance(request, ProviderCall)
    started = clock()
    try:
        outcome = request.provider.call(request.function, request.account, request.args, timeout=request.timeout)
    except Exception as exc:
        return CallResult(started, clock(), error=exc)
    return CallResult(started, clock(), outcome=outcome)


class _CallThreads:
    """Daemon threads that run provider calls, kept for the next call once idle: a thread
    started per call costs more than a trivial call itself. Daemon threads, unlike
    ``concurrent.futures``' (joined at exit), let a process end while a call it gave up
    on is still waiting on the network."""

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def run(self, work: Callable[[], None]) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1
        self._work.put(work)
        if start:
            threading.Thread(target=self._serve, name="luaq-call", daemon=True).start()

    def _serve(self) -> None:
        while True:
            work = self._work.get()
            work()
            with self._lock:
                self._idle += 1


_CALLERS = _CallThreads()


def perform_cancellable(
    request: Request, cancel: CancelEvent, *, clock: Callable[[], float] = time.monotonic
) -> Outcome | None:
    """Perform one request, or give up on it when ``cancel`` is set first (None).

    A sleep waits on the event itself. A provider call runs in a thread of its own (with
    this thread's context variables) while this one waits for it or for the cancel; a call
    given up on is left to end by itself and its outcome is dropped. A call still out when
    the time it was given (the run's wall clock left) is over, plus
    :data:`OVERRUN_GRACE_SECONDS`, is given up on too: its outcome is a :class:`CallOverran`
    error, and the run ends at its wall clock (an upstream that trickles bytes defeats
    httpx's timeouts, which count inactivity)."""
    if isinstance(request, Sleep):
        if request.seconds > 0 and cancel.wait(request.seconds):
            return None
        return None if cancel.is_set() else Slept()
    outcome: list[Outcome] = []
    done = threading.Event()
    context = contextvars.copy_context()

    def call() -> None:
        try:
            outcome.append(context.run(perform, request, clock=clock))
        finally:
            done.set()

    started = clock()
    _CALLERS.run(call)
    give_up = started + request.timeout + OVERRUN_GRACE_SECONDS
    if isinstance(cancel, Cancellation):
        with cancel.waking(done):
            done.wait(max(0.0, give_up - clock()))
    else:
        while not done.wait(CANCEL_POLL_SECONDS) and not cancel.is_set() and clock() < give_up:
            pass
    if cancel.is_set():
        return None
    if not outcome:
        return CallResult(started, clock(), error=CallOverran(request.operation or request.function, request.timeout))
    return outcome[0]


class CallOverran(Exception):
    """A provider call did not come back within the time it was given (see
    :func:`perform_cancellable`)."""

    error_type = "timeout"

    def __init__(self, operation: str, seconds: float) -> None:
        super().__init__(f"no answer within the {seconds:.3g} s left on the job's wall clock; the call was abandoned")


def drive(
    run: ScriptRun,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    cancel: CancelEvent | None = None,
) -> Envelope:
    """Run ``run`` to its end, performing each request synchronously. With ``cancel``
    (the event the run was built with), waits end early once it is set and the run ends
    ``cancelled``."""
    step = run.start()
    while isinstance(step, Pending):
        if cancel is None:
            step = run.resume(perform(step.request, clock=clock, sleep=sleep))
            continue
        outcome = perform_cancellable(step.request, cancel, clock=clock)
        step = run.cancel() if outcome is None else run.resume(outcome)
    return step.envelope


def run_script(
    source: str | bytes,
    *,
    providers: Sequence[Provider] = (),
    args: Mapping[str, Any] | None = None,
    limits: Limits | None = None,
    allow_writes: bool = False,
    on_output: Callable[[str], None] | None = None,
    on_call: Callable[[dict[str, Any]], None] | None = None,
    chunk_name: str = "script",
    job_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    cancel: CancelEvent | None = None,
) -> Envelope:
    """Run a Lua script in a fresh sandbox and return its envelope.

    Never raises for anything the script does (syntax and runtime errors, limits, provider
    errors, unconvertible return values): all of it ends up in the envelope. Exceptions
    raised by ``on_output``, ``on_call``, ``clock`` or ``sleep`` propagate.

    ``providers`` are reachable as ``app.integrations.<name>``; ``args`` is ``job.args``;
    write functions need ``allow_writes``; ``on_output`` receives each printed entry as it
    is printed and ``on_call`` each ``integration_calls`` entry; ``clock`` and ``sleep``
    measure and spend time (inject fakes in tests). ``cancel`` (a ``threading.Event``)
    stops the run, status ``cancelled``, soon after it is set: between instructions, before
    each call, and while it sleeps or waits on a call.
    """
    run = ScriptRun(
        source,
        providers=providers,
        args=args,
        limits=limits,
        allow_writes=allow_writes,
        on_output=on_output,
        on_call=on_call,
        chunk_name=chunk_name,
        job_id=job_id,
        clock=clock,
        cancel=cancel,
    )
    return drive(run, clock=clock, sleep=sleep, cancel=cancel)
