"""How the CLI shows envelopes and events to a person (``--json`` prints them raw)."""

from __future__ import annotations

import json
from typing import Any, TextIO

import click

from .job import JobStatus, failure_envelope


def exit_code(envelope: dict[str, Any]) -> int:
    """0 when the script succeeded, 1 when it failed or hit a limit, 2 when the job was
    rejected as a bad submission."""
    if envelope.get("success"):
        return 0
    return 2 if envelope.get("status") == "rejected" else 1


def print_json(value: Any, out: TextIO | None = None) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False), file=out)


def describe_error(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    where = f" (line {error['line']})" if error.get("line") else ""
    return f"{error.get('type', 'error')}{where}: {error.get('message', '')}"


def print_result(envelope: dict[str, Any], *, show_output: bool) -> None:
    """Text mode, like the reference runner: output, then the returned values, then the
    error on stderr."""
    if show_output and envelope.get("output"):
        click.echo(envelope["output"])
    result = envelope.get("result")
    if result:
        for value in result:
            click.echo(value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False))
    if not envelope.get("success"):
        status = envelope.get("status", "failed")
        click.echo(f"error [{status}] {describe_error(envelope.get('error'))}", err=True)


def print_event(event: dict[str, Any]) -> None:
    """One event of a job's stream in text mode: log lines to stdout, the rest to stderr."""
    data = event.get("data") or {}
    kind = event.get("type")
    if kind == "log":
        click.echo(data.get("line", ""))
    elif kind == "call":
        status = data.get("http_status") or data.get("status")
        click.echo(f"-> {data.get('path')} [{data.get('account')}] {status} {data.get('duration_ms', 0):.0f} ms"
                   + (f": {data['error']}" if data.get("error") else ""), err=True)  # fmt: skip
    elif kind in ("queued", "started"):
        extra = f" on {data['worker']} (attempt {event.get('attempt')})" if data.get("worker") else ""
        click.echo(f"-- {kind}{extra}", err=True)


def rejected_envelope(message: str, job_id: str | None = None) -> dict[str, Any]:
    """What ``--json`` prints for input that never became a job (usage errors)."""
    return failure_envelope(job_id, JobStatus.REJECTED, "usage_error", message)
