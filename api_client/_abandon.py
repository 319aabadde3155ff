"""Calls that are given up on stop before their next request.

A caller that stops waiting for a call (luaq cancels a job, or finds its attempt taken
over) cannot interrupt the thread the call runs in; the call would go on, wait for its
rate-limit slot, and then send, creating a prediction nobody will see. Inside
``abandon_when(check)``, every call checks ``check()`` before each request it sends (the
first, each retry, each poll of ``replicate.wait``) and, once it returns True, raises
:class:`CallAbandoned` instead of sending. The check travels in a context variable, so it
reaches the threads a caller runs calls in when they run in a copy of its context
(``contextvars.copy_context``), as luaq's sandbox driver does.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ._errors import CallAbandoned

_check: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar("luaq_abandon_check", default=None)


@contextmanager
def abandon_when(check: Callable[[], bool]) -> Iterator[None]:
    """While inside, calls raise :class:`CallAbandoned` instead of sending once ``check()``."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)


def raise_if_abandoned(operation: str) -> None:
    check = _check.get()
    if check is not None and check():
        raise CallAbandoned(
            f"{operation}: not sent: the caller gave up on this call (the job was cancelled or stopped)"
        )
