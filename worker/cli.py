"""The ``luaq`` command line: thin over the Python API.

Exit status: 0 the script succeeded; 1 it failed or hit a limit; 2 usage error (bad
flags, empty script, malformed JSON, a rejected submission, an unknown job); 3 the job has
not finished (``luaq result`` without ``--wait``, or a ``--wait-timeout`` that ran out).
With ``--json`` stdout carries exactly one JSON document: the envelope, or for a job that
has not finished ``{"job_id", "status"}`` (``watch --json``: one JSON event per line).

Absolute imports on purpose: Celery re-executes ``sys.argv`` on SIGHUP, which runs this
file as a script.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from worker.job import JobRequest, SubmissionError
from worker.render import exit_code, print_event, print_json, print_result, rejected_envelope
from worker.settings import Settings, SettingsError

EXIT_USAGE = 2
EXIT_NOT_FINISHED = 3
QUEUED_HINT_SECONDS = 10.0
EVENT_ID = re.compile(r"^(0|\d+-\d+)$")


class UsageProblem(click.ClickException):
    """A usage error; with --json it is reported as a rejected envelope."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, as_json: bool = False) -> None:
        super().__init__(message)
        self.as_json = as_json

    def show(self, file: Any = None) -> None:
        if self.as_json:
            print_json(rejected_envelope(self.message))
        else:
            click.echo(f"luaq: {self.message}", err=True)


class NotFinished(click.ClickException):
    """The job goes on; the caller stopped waiting for it."""

    exit_code = EXIT_NOT_FINISHED

    def __init__(self, job_id: str, status: str, *, as_json: bool, why: str = "") -> None:
        super().__init__(f"job {job_id} is {status}{why}")
        self.job_id, self.status, self.as_json = job_id, status, as_json

    def show(self, file: Any = None) -> None:
        if self.as_json:
            print_json({"job_id": self.job_id, "status": self.status})
        click.echo(f"luaq: {self.message}", err=True)


def parse_json_object(value: str | None, flag: str, as_json: bool) -> dict[str, Any]:
    """A JSON object given on the command line (``--args '{"n": 3}'``)."""
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"{flag} is not valid JSON ({exc}): {value!r}", as_json=as_json) from None
    if not isinstance(parsed, dict):
        raise UsageProblem(f"{flag} must be a JSON object, e.g. '{{\"n\": 3}}'", as_json=as_json)
    return parsed


pass_settings = click.make_pass_decorator(Settings)


@click.group()
@click.version_option(package_name="luaq")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run agent-written Lua scripts against the Replicate API: here (`luaq run`) or on a
    Redis-backed Celery queue (`luaq submit`, `luaq worker`, `luaq up`)."""
    from worker.logs import configure_logging

    if ctx.invoked_subcommand not in ("worker", "up"):
        configure_logging(json=False, level=os.environ.get("LUAQ_LOG_LEVEL", "WARNING"))
    try:
        ctx.obj = Settings.from_env()
    except SettingsError as exc:
        raise UsageProblem(str(exc), as_json="--json" in sys.argv) from None


# -- options shared by run and submit ----------------------------------------------------

SCRIPT_OPTIONS = [
    click.argument("file", required=False),
    click.option("--eval", "-e", "code", help="Lua code to run instead of FILE."),
    click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON document."),
    click.option("--force", is_flag=True, help="Allow write operations (allow_writes)."),
    click.option("--account", default="default", show_default=True, help="Account for unqualified calls."),
    click.option("--simulate", is_flag=True, help="Talk to the offline Replicate simulator."),
    click.option("--args", "script_args", metavar="JSON", help="JSON object the script sees as job.args."),
    click.option(
        "--timeout",
        "--cpu-limit",
        "wall_clock",
        type=float,
        metavar="SECONDS",
        help="Wall-clock limit.",
    ),
    click.option("--max-instructions", type=int, metavar="N", help="Instruction limit."),
    click.option("--memory-limit", type=int, metavar="BYTES", help="Lua memory limit."),
    click.option("--max-output", type=int, metavar="BYTES", help="Limit on printed output."),
    click.option("--max-predictions", type=int, metavar="N", help="Spend cap: predictions/trainings created."),
    click.option("--max-writes", type=int, metavar="N", help="Spend cap: write calls."),
    click.option("--limits", "limits_json", metavar="JSON", help="Any limits as JSON, e.g. '{\"calls\": 10}'."),
]


def script_options(func: Any) -> Any:
    for option in reversed(SCRIPT_OPTIONS):
        func = option(func)
    return func


def read_script(file: str | None, code: str | None, as_json: bool) -> tuple[str, str]:
    """The script source and its chunk name: --eval, else FILE (``-`` is stdin), else
    stdin when it is piped."""
    if code is not None and file is not None:
        raise UsageProblem("give either FILE or --eval CODE, not both", as_json=as_json)
    if code is not None:
        source, name = code, "eval"
    elif file == "-" or (file is None and not sys.stdin.isatty()):
        source, name = sys.stdin.read(), "stdin"
    elif file is not None:
        try:
            source = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"cannot read Lua file {file!r}: {exc}", as_json=as_json) from None
        name = Path(file).name
    else:
        raise UsageProblem("no script: give a FILE, --eval CODE, or - to read stdin", as_json=as_json)
    if not source.strip():
        raise UsageProblem("the script is empty: nothing to run", as_json=as_json)
    return source, name


def requested_limits(options: dict[str, Any], as_json: bool = False) -> dict[str, Any]:
    """The job's ``limits``: --limits JSON, then the single-limit flags that were given."""
    limits = parse_json_object(options.get("limits_json"), "--limits", as_json)
    names = {
        "wall_clock": "wall_clock_seconds",
        "max_instructions": "instructions",
        "memory_limit": "memory_bytes",
        "max_output": "output_bytes",
        "max_predictions": "predictions",
        "max_writes": "writes",
    }
    limits.update({limit: options[flag] for flag, limit in names.items() if options.get(flag) is not None})
    return limits


# -- run ---------------------------------------------------------------------------------


@cli.command()
@script_options
@click.option("--allow-read", multiple=True, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="Let create_file read host files inside DIR (repeatable).")  # fmt: skip
@click.option("--dry-run", is_flag=True,
              help="Run against the simulator (implies --simulate --force) and report the write calls it would make.")  # fmt: skip
@pass_settings
def run(settings: Settings, file: str | None, code: str | None, as_json: bool, force: bool, account: str,
        simulate: bool, script_args: str | None, allow_read: tuple[str, ...], dry_run: bool,
        **limit_flags: Any) -> None:  # fmt: skip
    """Run one script here, in the sandbox, without a queue (in a child process, so that
    a script stuck in one call is stopped at its wall clock plus 2 s)."""
    from sandbox import Limits
    from worker import dryrun
    from worker.isolated import run_isolated
    from worker.providers import UnknownAccount, build_providers

    if dry_run:
        simulate = force = True
    source, chunk_name = read_script(file, code, as_json)
    job_args = parse_json_object(script_args, "--args", as_json)
    try:
        limits = Limits.from_request(
            requested_limits(limit_flags),
            default=settings.default_limits,
            maximum=settings.max_limits,
        )
        providers = build_providers(
            settings,
            account=account,
            simulate=simulate,
            allow_read=[Path(d).resolve() for d in allow_read],
        )
    except (ValueError, UnknownAccount) as exc:
        raise UsageProblem(str(exc), as_json=as_json) from None
    recorders = [dryrun.WriteRecorder(provider) for provider in providers] if dry_run else []

    def on_output(line: str) -> None:
        if not as_json:
            click.echo(line)

    envelope = run_isolated(source, providers=recorders or providers, args=job_args, limits=limits,
                            allow_writes=force, chunk_name=chunk_name, on_output=on_output,
                            extra_meta=(lambda: {"dry_run": dryrun.report(recorders)}) if dry_run else None)  # fmt: skip
    if as_json:
        print_json(envelope)
    else:
        print_result(envelope, show_output=False)
        if dry_run:
            dryrun.print_report(envelope)
    sys.exit(exit_code(envelope))


# -- submit, result, watch ---------------------------------------------------------------


def parse_attachments(values: tuple[str, ...], as_json: bool) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UsageProblem(f"--file takes NAME=PATH, got {value!r}", as_json=as_json)
        try:
            files[name] = Path(path).read_bytes()
        except OSError as exc:
            raise UsageProblem(f"cannot read attachment {path!r}: {exc}", as_json=as_json) from None
    return files


def connect(settings: Settings, as_json: bool) -> Any:
    from worker.client import LuaqClient

    settings = settings.with_local_redis()
    if not settings.redis_url:
        raise UsageProblem(
            "no Redis configured: set LUAQ_REDIS_URL, or start local mode in another terminal with `luaq up`",
            as_json=as_json,
        )
    try:
        return LuaqClient.from_settings(settings)
    except ValueError as exc:  # a malformed LUAQ_REDIS_URL
        raise UsageProblem(f"LUAQ_REDIS_URL: {exc}", as_json=as_json) from None


wait_timeout_option = click.option(
    "--wait-timeout", type=float, metavar="SECONDS", help="Stop waiting after this long (exit 3)."
)


@cli.command()
@script_options
@click.option("--wait", is_flag=True, help="Wait for the job and print its envelope.")
@click.option("--follow", is_flag=True, help="Print the job's events live, then its result.")
@click.option("--job-id", help="Idempotency key: submitting an existing id returns that job.")
@click.option("--agent-id", help="Who submitted the job (for quotas and logs).")
@click.option("--file", "attachments", multiple=True, metavar="NAME=PATH",
              help="Attach a file the script may upload with create_file{content=NAME}.")  # fmt: skip
@click.option("--metadata", metavar="JSON", help="JSON object stored with the job.")
@click.option("--queue", help="Celery queue to submit to.")
@click.option("--priority", type=click.IntRange(0, 9), help="0-9.")
@click.option("--request", "request_path", metavar="PATH",
              help="Submit a whole JSON submission from PATH (- for stdin) instead of a script.")  # fmt: skip
@wait_timeout_option
@pass_settings
def submit(settings: Settings, file: str | None, code: str | None, as_json: bool, force: bool, account: str,
           simulate: bool, script_args: str | None, wait: bool, follow: bool, job_id: str | None,
           agent_id: str | None, attachments: tuple[str, ...], metadata: str | None, queue: str | None,
           priority: int | None, request_path: str | None, wait_timeout: float | None,
           **limit_flags: Any) -> None:  # fmt: skip
    """Put a script on the queue; prints the job id (or, with --wait, its envelope)."""
    if request_path is not None:
        try:
            text = sys.stdin.read() if request_path == "-" else Path(request_path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"cannot read submission {request_path!r}: {exc}", as_json=as_json) from None
        client = connect(settings, as_json)
        submitted = _submitted(as_json, lambda: client.submit_json(text))
    else:
        source, chunk_name = read_script(file, code, as_json)
        submission: dict[str, Any] = {
            "script": source,
            "file": chunk_name,
            "account": account,
            "args": parse_json_object(script_args, "--args", as_json),
            "allow_writes": force,
            "simulate": simulate,
            "limits": requested_limits(limit_flags, as_json),
            "files": parse_attachments(attachments, as_json),
            "metadata": parse_json_object(metadata, "--metadata", as_json),
        }
        optional = {"job_id": job_id, "agent_id": agent_id, "queue": queue, "priority": priority}
        submission.update({key: value for key, value in optional.items() if value is not None})
        client = connect(settings, as_json)
        submitted = _submitted(as_json, lambda: client.submit(submission))
    if not (wait or follow):
        if as_json:
            print_json({"job_id": submitted.job_id, "created": submitted.created})
        else:
            click.echo(submitted.job_id)
        return
    if not as_json:
        click.echo(f"-- job {submitted.job_id}", err=True)
    finish(client, submitted.job_id, as_json=as_json, follow=follow, timeout=wait_timeout)


def _submitted(as_json: bool, do_submit: Any) -> Any:
    try:
        return do_submit()
    except SubmissionError as exc:
        raise UsageProblem(f"submission rejected: {exc}", as_json=as_json) from None


def finish(client: Any, job_id: str, *, as_json: bool, follow: bool, timeout: float | None,
           after: str = "0-0") -> None:  # fmt: skip
    """Wait for a job (printing its events live when following) and exit with its status.

    While the job sits in the queue for long, say so on stderr once: the usual cause is
    that no worker consumes that queue."""
    from worker.store import JobNotFound

    envelope: dict[str, Any] = {}
    hinted = False

    def on_idle(seconds_waited: float, status: str) -> None:
        nonlocal hinted
        if status == "queued" and seconds_waited >= QUEUED_HINT_SECONDS and not hinted:
            hinted = True
            queue = client.get(job_id).request.get("queue") or client.settings.queue
            click.echo(f"luaq: job {job_id} still queued after {seconds_waited:.0f} s: is a worker "
                       f"(`luaq worker` or `luaq up`) consuming queue {queue!r}?", err=True)  # fmt: skip

    try:
        for event in client.follow(job_id, after, timeout=timeout, on_idle=on_idle):
            if event.type == "finished":
                envelope = event.data
            elif follow and not as_json:
                print_event(event.to_dict())
    except TimeoutError:
        record = client.get(job_id)
        raise NotFinished(job_id, record.status.value, as_json=as_json,
                          why=f" after {timeout} s; it goes on: `luaq watch {job_id}` follows it") from None  # fmt: skip
    except JobNotFound as exc:
        raise UsageProblem(str(exc), as_json=as_json) from None
    if as_json:
        print_json(envelope)
    else:
        print_result(envelope, show_output=not follow)
    sys.exit(exit_code(envelope))


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True,
              help="Print the envelope as one JSON document ({\"job_id\", \"status\"} while it has not finished).")  # fmt: skip
@click.option("--wait", is_flag=True, help="Wait for the job to finish.")
@wait_timeout_option
@pass_settings
def result(settings: Settings, job_id: str, as_json: bool, wait: bool, wait_timeout: float | None) -> None:
    """Print a job's envelope (exit 3 if it has not finished and --wait is not given)."""
    from worker.store import JobNotFound

    client = connect(settings, as_json)
    if wait:
        finish(client, job_id, as_json=as_json, follow=False, timeout=wait_timeout)
    try:
        record = client.get(job_id)
    except JobNotFound as exc:
        raise UsageProblem(str(exc), as_json=as_json) from None
    if record.envelope is None:
        raise NotFinished(job_id, record.status.value, as_json=as_json)
    if as_json:
        print_json(record.envelope)
    else:
        print_result(record.envelope, show_output=True)
    sys.exit(exit_code(record.envelope))


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
@click.option("--from", "after", default="0-0", metavar="EVENT_ID", help="Resume after this event id.")
@wait_timeout_option
@pass_settings
def watch(settings: Settings, job_id: str, as_json: bool, after: str, wait_timeout: float | None) -> None:
    """Replay a job's events from the first (or after --from), then follow it live."""
    from worker.store import JobNotFound

    if not EVENT_ID.match(after):
        raise UsageProblem(f"--from takes an event id such as 1733240000000-0, got {after!r}")
    client = connect(settings, as_json)
    envelope: dict[str, Any] = {}
    first = True
    try:
        for event in client.follow(job_id, after, timeout=wait_timeout):
            if first and after == "0-0" and event.type != "queued":
                click.echo("luaq: the oldest events of this job were trimmed (LUAQ_EVENTS_MAXLEN); "
                           "its envelope still holds all output", err=True)  # fmt: skip
            first = False
            if as_json:
                click.echo(json.dumps(event.to_dict(), ensure_ascii=False))
            elif event.type != "finished":
                print_event(event.to_dict())
            if event.type == "finished":
                envelope = event.data
    except JobNotFound as exc:
        raise UsageProblem(str(exc)) from None
    except TimeoutError:
        raise NotFinished(job_id, client.get(job_id).status.value, as_json=False,
                          why=f" after {wait_timeout} s") from None  # fmt: skip
    if not as_json:
        print_result(envelope, show_output=False)
    sys.exit(exit_code(envelope))


@cli.command()
@click.argument("job_id")
@click.option("--cancel-predictions", is_flag=True,
              help="Also cancel the predictions the job created that are still running.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--wait-timeout", type=float, default=10.0, show_default=True, metavar="SECONDS",
              help="How long to wait for a running job to stop.")  # fmt: skip
@pass_settings
def cancel(settings: Settings, job_id: str, cancel_predictions: bool, as_json: bool, wait_timeout: float) -> None:
    """Cancel a job: a queued one never runs; a running one stops within a second, ending
    `cancelled` with its output so far. Exit 0 when it is cancelled, 1 when it had already
    finished otherwise, 3 when it had not stopped within --wait-timeout."""
    from worker.store import JobNotFound

    client = connect(settings, as_json)
    try:
        done = client.cancel(job_id, cancel_predictions=cancel_predictions, timeout=wait_timeout)
    except JobNotFound as exc:
        raise UsageProblem(str(exc), as_json=as_json) from None
    if as_json:
        print_json({"job_id": done.job_id, "outcome": done.outcome, "status": done.status,
                    "cancelled_predictions": done.cancelled_predictions})  # fmt: skip
    elif done.outcome == "final":
        click.echo(f"job {job_id} had already finished: {done.status}")
    elif done.outcome == "requested":
        click.echo(f"job {job_id}: cancel requested; it is still {done.status}", err=True)
    else:
        click.echo(f"job {job_id} cancelled")
        for report in done.cancelled_predictions:
            result = report.get("status") or f"error: {report.get('error')}"
            click.echo(f"  prediction {report['id']} ({report['account']}): {result}")
    sys.exit({"cancelled": 0, "final": 1}.get(done.outcome, EXIT_NOT_FINISHED))


# -- batch, status ------------------------------------------------------------------------


@cli.command()
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("inputs", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Results file (JSONL), appended to; re-running with the same --out resumes.")  # fmt: skip
@click.option("--account", default="default", show_default=True, help="Account for unqualified calls.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 10_000), default=16, show_default=True,
              help="Jobs of this batch queued or running at once.")  # fmt: skip
@click.option("--force", is_flag=True, help="Allow write operations (allow_writes).")
@click.option("--simulate", is_flag=True, help="Talk to the offline Replicate simulator.")
@click.option("--queue", help="Celery queue to submit to.")
@click.option("--agent-id", help="Who submitted the jobs.")
@click.option("--timeout", "wall_clock", type=float, metavar="SECONDS", help="Wall-clock limit per job.")
@click.option("--limits", "limits_json", metavar="JSON", help="Limits per job as JSON, e.g. '{\"calls\": 10}'.")
@click.option("--retry-failed", is_flag=True,
              help="Run again, as new jobs, the inputs whose result in --out did not succeed; "
                   "the new result is appended and replaces the old one.")  # fmt: skip
@pass_settings
def batch(settings: Settings, script: str, inputs: str, out_path: str, account: str, concurrency: int, force: bool,
          simulate: bool, queue: str | None, agent_id: str | None, retry_failed: bool,
          **limit_flags: Any) -> None:  # fmt: skip
    """Run SCRIPT once per line of INPUTS (JSONL; each line is job.args), appending each
    result (the envelope plus "line") to --out as it finishes. Interrupt and re-run the same
    command to resume: inputs whose results are in --out, or whose jobs were already
    submitted, are not run again (with --retry-failed, failed ones are). Exit 0 when every
    input succeeded, 1 otherwise."""
    import signal
    import threading

    from worker.batch import BatchError, BatchInterrupted, ProgressDisplay, read_inputs, run_batch

    source, chunk_name = read_script(script, None, False)
    template: dict[str, Any] = {"script": source, "file": chunk_name, "account": account, "allow_writes": force,
                                "simulate": simulate, "limits": requested_limits(limit_flags)}  # fmt: skip
    template.update({k: v for k, v in {"queue": queue, "agent_id": agent_id}.items() if v is not None})
    client = connect(settings, False)
    _submitted(False, lambda: JobRequest.from_dict({**template, "args": {}}, client.settings))  # options valid?
    display = ProgressDisplay(sys.stderr)
    stop = threading.Event()

    def on_interrupt(signum: int, frame: Any) -> None:
        # Stop between two steps, never inside a submission; a second Ctrl-C stops at once.
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = run_batch(client, template, read_inputs(Path(inputs)), Path(out_path), concurrency=concurrency,
                           display=display, retry_failed=retry_failed, should_stop=stop.is_set)  # fmt: skip
    except BatchError as exc:
        raise UsageProblem(str(exc)) from None
    except (BatchInterrupted, KeyboardInterrupt):
        click.echo(f"luaq: interrupted; finished results are in {out_path} and submitted jobs go on: "
                   "run the same command again to resume", err=True)  # fmt: skip
        sys.exit(130)
    click.echo(f"luaq: {result.summary(Path(out_path))}", err=True)
    sys.exit(0 if result.ok else 1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--timeout", type=float, default=1.0, show_default=True, help="Seconds to wait for workers to answer.")
@pass_settings
def status(settings: Settings, as_json: bool, timeout: float) -> None:
    """Queue depth per queue (waiting and reserved), workers and their load, jobs finished
    in the last hour by status, the rate limits the workers enforce (as they announce them),
    and each account's call rate, 429s, limiter state, requests in flight and, where a daily
    cap is set, predictions created today. Read-only."""
    from worker.status import collect, render

    client = connect(settings, as_json)
    report = collect(client.store.redis, client.app, client.settings, inspect_timeout=timeout)
    if as_json:
        print_json(report)
    else:
        click.echo(render(report))


@cli.command()
@click.option("--live", is_flag=True, help="Check liveness: every worker process consumes.")
@click.option("--ready", is_flag=True, help="Check readiness: Redis answers, a worker process consumes.")
@click.option("--port", type=click.IntRange(1, 65535), help="The worker's endpoint port (default: LUAQ_METRICS_PORT).")
@click.option("--host", default="127.0.0.1", show_default=True, help="The worker's endpoint host.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for an answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint's JSON answers.")
@pass_settings
def health(settings: Settings, live: bool, ready: bool, port: int | None, host: str, timeout: float,
           as_json: bool) -> None:  # fmt: skip
    """Ask a `luaq worker` on this host whether it is live and ready (for exec probes and
    compose health checks): exit 0 when every check asked passes, 1 when one fails or the
    worker does not answer. --live, --ready, or both (also when neither is given)."""
    from worker.health import probe

    port = port or settings.metrics_port
    if not port:
        raise UsageProblem("the health endpoint is off (LUAQ_METRICS_PORT=0): pass --port")
    checks = {"live": "/healthz", "ready": "/readyz"}
    asked = {name for name, wanted in (("live", live), ("ready", ready)) if wanted} or set(checks)
    answers = {name: probe(port, path, host=host, timeout=timeout)
               for name, path in checks.items() if name in asked}  # fmt: skip
    if as_json:
        print_json({name: body for name, (_, body) in answers.items()})
    else:
        for name, (ok, body) in answers.items():
            click.echo(f"{name}: {'ok' if ok else 'FAILING'}: {body.get('reason', '')}")
    if not all(ok for ok, _ in answers.values()):
        sys.exit(1)


# -- processes ---------------------------------------------------------------------------


@cli.command()
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 10_000),
    help="Jobs one process runs at once (threads pool; default 100, LUAQ_WORKER_CONCURRENCY); "
    "under --pool prefork, the number of processes.",
)
@click.option(
    "--processes",
    "-p",
    type=click.IntRange(1, 256),
    help="Worker processes (threads pool; default: CPUs, LUAQ_WORKER_PROCESSES).",
)
@click.option(
    "--pool",
    type=click.Choice(["threads", "prefork"]),
    help="threads: many jobs per process (default); prefork: one job per process.",
)
@click.option("--simulate", is_flag=True, help="Run every job against the offline simulator.")
@click.option("--queue", "-Q", "queues", multiple=True, help="Queues to consume (default: luaq).")
@click.option("--loglevel", "-l", default="INFO", show_default=True, help="Lowest level of the JSON log lines.")
@pass_settings
def worker(settings: Settings, concurrency: int | None, processes: int | None, pool: str | None, simulate: bool,
           queues: tuple[str, ...], loglevel: str) -> None:  # fmt: skip
    """Start worker processes that run jobs, under a supervisor (JSON logs on stderr)."""
    from worker.logs import configure_logging
    from worker.supervisor import Supervisor

    configure_logging(json=True, level=loglevel)
    settings = settings.with_local_redis()
    if not settings.redis_url:
        raise UsageProblem("no Redis configured: set LUAQ_REDIS_URL, or use `luaq up` for local mode")
    changes: dict[str, Any] = {"simulate": True} if simulate else {}
    pool = pool or settings.worker_pool
    changes["worker_pool"] = pool
    if concurrency:
        changes["worker_concurrency" if pool == "threads" else "worker_processes"] = concurrency
    if processes and pool == "threads":
        changes["worker_processes"] = processes
    settings = replace(settings, **changes)
    sys.exit(Supervisor(settings, queues or (settings.queue,), loglevel).run())


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8787, show_default=True, help="Port to listen on.")
@click.option("--delay", type=float, default=1.0, show_default=True, help="Seconds a prediction takes.")
def simulator(host: str, port: int, delay: float) -> None:
    """Serve the offline Replicate simulator over HTTP."""
    from worker.local import run_simulator

    run_simulator(host, port, delay)


@cli.command()
@click.argument("page", required=False)
@click.option("--search", "query", help="Search the docs instead.")
@pass_settings
def docs(settings: Settings, page: str | None, query: str | None) -> None:
    """Show the docs scripts see: `luaq docs`, `luaq docs replicate`,
    `luaq docs replicate.get_prediction`, `luaq docs --search prediction`."""
    from sandbox import run_script
    from worker.providers import build_providers

    if query is not None:
        code, args = "return docs.search(job.args.q)", {"q": query}
    elif page:
        code, args = "return docs.read(job.args.page)", {"page": page}
    else:
        code, args = "return docs.list()", {}
    envelope = run_script(code, providers=build_providers(settings, simulate=True), args=args).to_dict()
    print_result(envelope, show_output=True)
    found = envelope["success"] and not str((envelope["result"] or [""])[0]).startswith("No docs found")
    sys.exit(0 if found else 1)


@cli.command()
@click.argument("script", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--simulate", is_flag=True, help="Use the offline simulator (also the default without a token).")
@click.option("--concurrency", "-c", type=click.IntRange(1, 512),
              help="Jobs each worker process runs at once (one process per CPU; default 100).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="With SCRIPT: print its envelope as JSON.")
@click.option("--force", is_flag=True, help="With SCRIPT: allow its write operations.")
@pass_settings
def up(settings: Settings, script: str | None, simulate: bool, concurrency: int | None, as_json: bool,
       force: bool) -> None:  # fmt: skip
    """Local mode in one command: an embedded Redis (unless LUAQ_REDIS_URL is set), a
    worker, and the simulator when --simulate is given or no REPLICATE_API_TOKEN is set.

    With SCRIPT, runs it once through the whole stack, prints its result and stops;
    without, runs until interrupted (submit from another terminal with `luaq submit`).
    Ctrl-C stops gracefully (running jobs finish first); a second Ctrl-C stops at once, and
    the jobs it cut off run again on the next `luaq up`."""
    from worker.local import run_local_stack

    code = run_local_stack(
        settings,
        script=script,
        simulate=simulate,
        concurrency=concurrency,
        as_json=as_json,
        force=force,
    )
    sys.exit(code)


def main() -> None:
    """The console script: click's own usage errors and lost connections also end with a
    clear message (and, under --json, one rejected envelope), never a traceback."""
    import kombu.exceptions
    import redis

    as_json = "--json" in sys.argv[1:]
    try:
        cli.main(prog_name="luaq", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        if as_json:
            print_json(rejected_envelope(exc.format_message()))
        else:
            exc.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except (redis.RedisError, kombu.exceptions.OperationalError) as exc:
        problem = UsageProblem(f"cannot reach Redis ({type(exc).__name__}): {exc}", as_json=as_json)
        problem.show()
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
