"""``luaq run``'s way to run a script: in a child process the CLI can always stop.

The child runs the sandbox and reports each printed line and the final envelope as JSON
lines on a pipe. The parent relays the lines as they come and waits for the envelope
until the job's wall clock plus :data:`worker.watchdog.MARGIN_SECONDS`; a child still
running then is stuck inside one call, so it is killed and the run ends with a
``limit_exceeded`` (wall clock) envelope carrying the output so far. A child that dies
(a crash in C code) ends the run with an ``internal`` error. Either way the CLI answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sandbox import Limits, Provider, run_script

from .job import JobStatus, failure_envelope, stuck_envelope
from .watchdog import MARGIN_SECONDS


def run_isolated(
    source: str,
    *,
    providers: Sequence[Provider],
    args: Mapping[str, Any],
    limits: Limits,
    allow_writes: bool,
    chunk_name: str,
    on_output: Callable[[str], None],
    extra_meta: Callable[[], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run ``source`` in a forked child; returns the envelope as a dict. ``extra_meta``
    runs in the child after the script and adds to the envelope's ``meta`` (what the
    child's providers saw, for example)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, and never return into the CLI
        os.close(read_end)
        status = 0
        try:
            with os.fdopen(write_end, "w", encoding="utf-8") as pipe:

                def report(kind: str, value: Any) -> None:
                    pipe.write(json.dumps({kind: value}, ensure_ascii=False) + "\n")
                    pipe.flush()

                envelope = run_script(source, providers=providers, args=args, limits=limits,
                                      allow_writes=allow_writes, chunk_name=chunk_name,
                                      on_output=lambda line: report("line", line))  # fmt: skip
                result = envelope.to_dict()
                if extra_meta is not None:
                    result["meta"].update(extra_meta())
                report("envelope", result)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        return _relay(pid, read_end, limits, on_output)
    finally:
        os.close(read_end)


def _relay(pid: int, fd: int, limits: Limits, on_output: Callable[[str], None]) -> dict[str, Any]:
    deadline = time.monotonic() + limits.wall_clock_seconds + MARGIN_SECONDS
    output: list[str] = []
    buffer = b""
    while True:
        left = deadline - time.monotonic()
        ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
        if not ready:
            _kill(pid)
            return stuck_envelope(None, limits.wall_clock_seconds, output, ended="was stopped")
        chunk = os.read(fd, 65536)
        if not chunk:  # the child is gone without an envelope
            _, status = os.waitpid(pid, 0)
            how = (
                f"signal {os.WTERMSIG(status)}"
                if os.WIFSIGNALED(status)
                else f"status {os.waitstatus_to_exitcode(status)}"
            )
            return failure_envelope(None, JobStatus.FAILED, "internal", f"the sandbox process died ({how})",
                                    output="\n".join(output))  # fmt: skip
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            message = json.loads(raw)
            if "line" in message:
                output.append(message["line"])
                on_output(message["line"])
            else:
                os.waitpid(pid, 0)
                return message["envelope"]


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
