"""The last line of defence for the wall clock: a thread that ends this process.

The sandbox enforces a job's wall clock itself, between Lua instructions and around every
host call. A script stuck inside one C call (or a lupa call that never returns) never
gives it the chance, and nothing can interrupt that call from inside the process. So each
run is watched: when it outlives its wall clock by :data:`MARGIN_SECONDS`, the watchdog
records the job's outcome (``on_expire``) and ends the process with ``os._exit``. Under
Celery's prefork pool the pool replaces the process; the job's message is put back
(``task_reject_on_worker_lost``) and, its record being final, is then acknowledged without
running again.

lupa releases the GIL while Lua runs, so this thread gets to run. If a lupa bug ever held
the GIL instead, Celery's hard time limit (wall clock + :data:`HARD_LIMIT_GRACE_SECONDS`,
enforced by the pool's parent process) ends the process and the task's ``on_failure``
records the outcome there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import TracebackType

import structlog

log = structlog.get_logger("luaq.watchdog")

MARGIN_SECONDS = 2.0
HARD_LIMIT_GRACE_SECONDS = 10.0
EXIT_STATUS = 70  # EX_SOFTWARE: the process was ended on purpose


class Watchdog:
    """``with Watchdog(seconds, on_expire): run()`` — ends the process if ``run`` takes
    longer than ``seconds`` plus the margin."""

    def __init__(self, seconds: float, on_expire: Callable[[], None], *, margin: float = MARGIN_SECONDS,
                 exit: Callable[[int], object] = os._exit) -> None:  # fmt: skip
        self._limit = seconds + margin
        self._on_expire = on_expire
        self._exit = exit
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="luaq-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self._limit):
            return
        log.error("watchdog.expired", seconds=round(time.monotonic() - self._started, 3))
        try:
            self._on_expire()
        except Exception:
            log.exception("watchdog.on_expire_failed")
        finally:
            self._exit(EXIT_STATUS)
