"""The ``luaq`` command line: thin over the Python API.

Exit status: 0 the script succeeded; 1 it failed or hit a limit; 2 usage error (bad flags,
empty script, malformed JSON, a rejected submission); 3 ``luaq result`` on a job that has
not finished yet. With ``--json`` stdout carries exactly one JSON envelope (``watch``:
one JSON event per line), also for usage errors.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .job import JobStatus, SubmissionError
from .render import exit_code, print_event, print_json, print_result, rejected_envelope
from .settings import Settings

EXIT_USAGE = 2
EXIT_NOT_FINISHED = 3


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


def parse_json_object(value: str | None, flag: str, as_json: bool) -> dict[str, Any]:
    """A JSON object given on the command line (``--args '{"n": 3}'``)."""
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise UsageProblem(
            f"{flag} is not valid JSON ({exc}): {value!r}", as_json=as_json
        ) from None
    if not isinstance(parsed, dict):
        raise UsageProblem(f"{flag} must be a JSON object, e.g. '{{\"n\": 3}}'", as_json=as_json)
    return parsed


pass_settings = click.make_pass_decorator(Settings)


@click.group()
@click.version_option(package_name="luaq")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run agent-written Lua scripts against the Replicate API: locally (`luaq run`) or
    on a Redis-backed Celery queue (`luaq submit`, `luaq worker`, `luaq up`)."""
    from .logs import configure_logging

    if ctx.invoked_subcommand not in ("worker", "up"):
        configure_logging(json=False, level=os.environ.get("LUAQ_LOG_LEVEL", "WARNING"))
    ctx.obj = Settings.from_env()


def script_options(func: Any) -> Any:
    func = click.argument("file", required=False)(func)
    func = click.option("--eval", "-e", "code", help="Lua code to run instead of FILE.")(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON envelope.")(
        func
    )
    func = click.option("--force", is_flag=True, help="Allow write operations (allow_writes).")(
        func
    )
    func = click.option("--account", default="default", show_default=True,
                        help="Account used by unqualified calls.")(func)  # fmt: skip
    func = click.option(
        "--simulate", is_flag=True, help="Talk to the offline Replicate simulator."
    )(func)
    func = click.option("--args", "script_args", default=None, metavar="JSON",
                        help="JSON object visible to the script as job.args.")(func)  # fmt: skip
    func = click.option("--memory-limit", type=int, help="Memory limit in bytes.")(func)
    func = click.option("--cpu-limit", "--timeout", "wall_clock", type=float,
                        help="Wall-clock limit in seconds.")(func)  # fmt: skip
    func = click.option("--instruction-limit", type=int, help="Instruction limit.")(func)
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
        raise UsageProblem(
            "no script: give a FILE, --eval CODE, or - to read stdin", as_json=as_json
        )
    if not source.strip():
        raise UsageProblem("the script is empty: nothing to run", as_json=as_json)
    return source, name


def requested_limits(
    memory_limit: int | None, wall_clock: float | None, instruction_limit: int | None
) -> dict:
    limits: dict[str, Any] = {}
    if memory_limit is not None:
        limits["memory_bytes"] = memory_limit
    if wall_clock is not None:
        limits["wall_clock_seconds"] = wall_clock
    if instruction_limit is not None:
        limits["instructions"] = instruction_limit
    return limits


@cli.command()
@script_options
@click.option("--allow-read", "allow_read", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Let create_file read host files inside DIR (repeatable).")  # fmt: skip
@pass_settings
def run(settings: Settings, file: str | None, code: str | None, as_json: bool, force: bool, account: str,
        simulate: bool, script_args: str | None, memory_limit: int | None, wall_clock: float | None,
        instruction_limit: int | None, allow_read: tuple[str, ...]) -> None:  # fmt: skip
    """Run one script here, in the sandbox, without a queue."""
    from sandbox import Limits, run_script

    from .providers import UnknownAccount, build_providers

    source, chunk_name = read_script(file, code, as_json)
    job_args = parse_json_object(script_args, "--args", as_json)
    try:
        limits = Limits.from_request(requested_limits(memory_limit, wall_clock, instruction_limit),
                                     default=settings.default_limits, maximum=settings.max_limits)  # fmt: skip
        providers = build_providers(settings, account=account, simulate=simulate,
                                    allow_read=[Path(d).resolve() for d in allow_read])  # fmt: skip
    except (ValueError, UnknownAccount) as exc:
        raise UsageProblem(str(exc), as_json=as_json) from None

    def on_output(line: str) -> None:
        if not as_json:
            click.echo(line)

    envelope = run_script(source, providers=providers, args=job_args, limits=limits,
                          allow_writes=force, on_output=on_output, chunk_name=chunk_name).to_dict()  # fmt: skip
    if as_json:
        print_json(envelope)
    else:
        print_result(envelope, show_output=False)
    sys.exit(exit_code(envelope))


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
    from .client import LuaqClient

    settings = settings.with_local_redis()
    if not settings.redis_url:
        raise UsageProblem(
            "no Redis configured: set LUAQ_REDIS_URL, or start local mode in another terminal with `luaq up`",
            as_json=as_json,
        )
    return LuaqClient.from_settings(settings)


@cli.command()
@script_options
@click.option("--wait", is_flag=True, help="Wait for the job and print its envelope.")
@click.option("--follow", is_flag=True, help="Print the job's log lines live, then its result.")
@click.option("--job-id", help="Idempotency key: submitting an existing id returns that job.")
@click.option("--agent-id", help="Who submitted the job (for quotas and logs).")
@click.option("--file", "attachments", multiple=True, metavar="NAME=PATH",
              help="Attach a file the script may upload with create_file{content=NAME}.")  # fmt: skip
@click.option("--metadata", default=None, metavar="JSON", help="JSON object stored with the job.")
@click.option("--queue", help="Celery queue to submit to.")
@click.option("--priority", type=click.IntRange(0, 9), help="0-9.")
@click.option(
    "--timeout",
    "wait_timeout",
    type=float,
    default=None,
    help="Give up waiting after this many seconds.",
)
@click.option("--request", "request_path", metavar="PATH",
              help="Submit a whole JSON submission read from PATH (- for stdin) instead of a script.")  # fmt: skip
@pass_settings
def submit(settings: Settings, file: str | None, code: str | None, as_json: bool, force: bool, account: str,
           simulate: bool, script_args: str | None, memory_limit: int | None, wall_clock: float | None,
           instruction_limit: int | None, wait: bool, follow: bool, job_id: str | None, agent_id: str | None,
           attachments: tuple[str, ...], metadata: str | None, queue: str | None, priority: int | None,
           wait_timeout: float | None, request_path: str | None) -> None:  # fmt: skip
    """Put a script on the queue; prints the job id (or, with --wait, its envelope)."""
    if request_path is not None:
        submit_request(
            settings, request_path, as_json=as_json, wait=wait, follow=follow, timeout=wait_timeout
        )
        return
    source, chunk_name = read_script(file, code, as_json)
    submission: dict[str, Any] = {
        "script": source, "chunk_name": chunk_name, "account": account,
        "args": parse_json_object(script_args, "--args", as_json),
        "allow_writes": force, "simulate": simulate,
        "limits": requested_limits(memory_limit, wall_clock, instruction_limit),
        "files": parse_attachments(attachments, as_json), "metadata": parse_json_object(metadata, "--metadata", as_json),
    }  # fmt: skip
    for key, value in (
        ("job_id", job_id),
        ("agent_id", agent_id),
        ("queue", queue),
        ("priority", priority),
    ):
        if value is not None:
            submission[key] = value
    client = connect(settings, as_json)
    try:
        submitted = client.submit(submission)
    except SubmissionError as exc:
        raise UsageProblem(f"submission rejected: {exc}", as_json=as_json) from None
    report_submitted(
        client, submitted, as_json=as_json, wait=wait, follow=follow, timeout=wait_timeout
    )


def submit_request(settings: Settings, path: str, *, as_json: bool, wait: bool, follow: bool,
                   timeout: float | None) -> None:  # fmt: skip
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"cannot read submission {path!r}: {exc}", as_json=as_json) from None
    client = connect(settings, as_json)
    try:
        submitted = client.submit_json(text)
    except SubmissionError as exc:
        raise UsageProblem(f"submission rejected: {exc}", as_json=as_json) from None
    report_submitted(client, submitted, as_json=as_json, wait=wait, follow=follow, timeout=timeout)


def report_submitted(client: Any, submitted: Any, *, as_json: bool, wait: bool, follow: bool,
                     timeout: float | None) -> None:  # fmt: skip
    if not (wait or follow):
        if as_json:
            print_json({"job_id": submitted.job_id, "created": submitted.created})
        else:
            click.echo(submitted.job_id)
        return
    if not as_json:
        click.echo(f"-- job {submitted.job_id}", err=True)
    finish(client, submitted.job_id, as_json=as_json, follow=follow, timeout=timeout)


def finish(client: Any, job_id: str, *, as_json: bool, follow: bool, timeout: float | None,
           after: str = "0-0") -> None:  # fmt: skip
    """Wait for a job (printing its events live when following) and exit with its status."""
    from .store import JobNotFound

    try:
        if follow and not as_json:
            envelope: dict[str, Any] = {}
            for event in client.follow(job_id, after, timeout=timeout):
                if event.type == "finished":
                    envelope = event.data
                else:
                    print_event(event.to_dict())
            print_result(envelope, show_output=False)
        else:
            envelope = client.wait(job_id, timeout=timeout)
            if as_json:
                print_json(envelope)
            else:
                print_result(envelope, show_output=True)
    except TimeoutError as exc:
        raise click.ClickException(
            f"{exc}; the job goes on: `luaq watch {job_id}` to follow it"
        ) from None
    except JobNotFound as exc:
        raise UsageProblem(str(exc), as_json=as_json) from None
    sys.exit(exit_code(envelope))


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@click.option("--wait", is_flag=True, help="Wait for the job to finish.")
@click.option("--timeout", type=float, default=None)
@pass_settings
def result(
    settings: Settings, job_id: str, as_json: bool, wait: bool, timeout: float | None
) -> None:
    """Print a job's envelope (exit 3 if it has not finished and --wait is not given)."""
    from .store import JobNotFound

    client = connect(settings, as_json)
    if wait:
        finish(client, job_id, as_json=as_json, follow=False, timeout=timeout)
    try:
        record = client.get(job_id)
    except JobNotFound as exc:
        raise UsageProblem(str(exc), as_json=as_json) from None
    if record.envelope is None:
        if as_json:
            print_json({"job_id": job_id, "status": record.status.value, "attempt": record.attempt})
        else:
            click.echo(f"job {job_id} is {record.status.value}", err=True)
        sys.exit(EXIT_NOT_FINISHED)
    if as_json:
        print_json(record.envelope)
    else:
        print_result(record.envelope, show_output=True)
    sys.exit(exit_code(record.envelope))


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
@click.option("--from", "after", default="0-0", help="Resume after this event id.")
@click.option("--timeout", type=float, default=None)
@pass_settings
def watch(
    settings: Settings, job_id: str, as_json: bool, after: str, timeout: float | None
) -> None:
    """Replay a job's events from the first (or after --from), then follow it live."""
    from .store import JobNotFound

    client = connect(settings, as_json)
    envelope: dict[str, Any] = {}
    try:
        for event in client.follow(job_id, after, timeout=timeout):
            if as_json:
                click.echo(json.dumps(event.to_dict(), ensure_ascii=False))
            elif event.type != "finished":
                print_event(event.to_dict())
            if event.type == "finished":
                envelope = event.data
    except JobNotFound as exc:
        raise UsageProblem(str(exc), as_json=as_json) from None
    except TimeoutError as exc:
        raise click.ClickException(str(exc)) from None
    if not as_json:
        print_result(envelope, show_output=False)
    sys.exit(exit_code(envelope))


@cli.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 512), default=None,
              help="Jobs run at once (default: number of CPUs).")  # fmt: skip
@click.option("--simulate", is_flag=True, help="Run every job against the offline simulator.")
@click.option("--queue", "-Q", "queues", multiple=True, help="Queues to consume (default: luaq).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@pass_settings
def worker(settings: Settings, concurrency: int | None, simulate: bool, queues: tuple[str, ...],
           loglevel: str) -> None:  # fmt: skip
    """Start a Celery worker that runs jobs."""
    from .app import create_app
    from .logs import configure_logging

    configure_logging(json=True, level=loglevel)
    settings = settings.with_local_redis()
    if not settings.redis_url:
        raise UsageProblem(
            "no Redis configured: set LUAQ_REDIS_URL, or use `luaq up` for local mode"
        )
    if simulate:
        settings = replace(settings, simulate=True)
    app = create_app(settings)
    argv = ["worker", f"--loglevel={loglevel}", "--pool=prefork", f"--hostname=luaq-{os.getpid()}@%h",
            "-Q", ",".join(queues or (settings.queue,)), "--without-mingle", "--without-gossip"]  # fmt: skip
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main(argv=argv)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8787, show_default=True)
@click.option("--delay", type=float, default=1.0, show_default=True,
              help="Seconds a simulated prediction takes to succeed.")  # fmt: skip
def simulator(host: str, port: int, delay: float) -> None:
    """Serve the offline Replicate simulator over HTTP."""
    from .local import run_simulator

    run_simulator(host, port, delay)


@cli.command()
@click.argument("page", required=False)
@click.option("--search", "query", help="Search the docs instead.")
@pass_settings
def docs(settings: Settings, page: str | None, query: str | None) -> None:
    """Show the docs scripts see: `luaq docs`, `luaq docs replicate`,
    `luaq docs replicate.get_prediction`, `luaq docs --search prediction`."""
    from sandbox import run_script

    from .providers import build_providers

    if query is not None:
        code, args = "return docs.search(job.args.q)", {"q": query}
    elif page:
        code, args = "return docs.read(job.args.page)", {"page": page}
    else:
        code, args = "return docs.list()", {}
    envelope = run_script(
        code, providers=build_providers(settings, simulate=True), args=args
    ).to_dict()
    print_result(envelope, show_output=True)
    sys.exit(exit_code(envelope))


@cli.command()
@click.argument("script", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--simulate", is_flag=True, help="Use the offline simulator (also the default without a token)."
)
@click.option("--concurrency", "-c", type=click.IntRange(1, 512), default=None)
@click.option("--json", "as_json", is_flag=True, help="With SCRIPT: print its envelope as JSON.")
@click.option("--force", is_flag=True, help="With SCRIPT: allow its write operations.")
@pass_settings
def up(settings: Settings, script: str | None, simulate: bool, concurrency: int | None, as_json: bool,
       force: bool) -> None:  # fmt: skip
    """Local mode in one command: an embedded Redis (unless LUAQ_REDIS_URL is set), a
    worker, and the simulator when --simulate is given or no REPLICATE_API_TOKEN is set.

    With SCRIPT, runs it once through the whole stack, prints its result and stops;
    without, runs until interrupted (submit from another terminal with `luaq submit`)."""
    from .local import run_local_stack

    sys.exit(run_local_stack(settings, script=script, simulate=simulate, concurrency=concurrency,
                             as_json=as_json, force=force))  # fmt: skip


def main() -> None:
    cli(prog_name="luaq")


if __name__ == "__main__":
    main()


__all__ = ["JobStatus", "cli", "main"]
