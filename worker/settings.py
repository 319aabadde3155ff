"""Settings: one frozen value, read from the environment only at the edges.

The CLI and the worker boot call :meth:`Settings.from_env` once and pass the result to
``create_app(settings)``, the submission client and the provider factory; nothing else
reads the environment.

| variable | setting | default |
|---|---|---|
| ``LUAQ_REDIS_URL`` | ``redis_url``: broker, results channel, job store and rate limiter; ``redis://`` or ``redis+sentinel://`` (see :mod:`worker.redis_urls`) | unset: local mode (``luaq up``) |
| ``LUAQ_REDIS_SENTINEL_MASTER`` | ``redis_sentinel_master``: the Sentinel master name when the URL names none | ``mymaster`` |
| ``LUAQ_VISIBILITY_TIMEOUT`` | ``visibility_timeout_seconds``: seconds before Redis redelivers an unacknowledged job | 2 x max wall clock + 600 |
| ``LUAQ_QUEUE`` | ``queue``: the Celery queue jobs go to by default | ``luaq`` |
| ``LUAQ_QUEUES`` | ``queues``: every queue a submission may name (comma-separated) | the default queue |
| ``LUAQ_JOB_TTL`` | ``job_ttl_seconds``: how long job records and event streams live | 86400 |
| ``LUAQ_EVENTS_MAXLEN`` | ``events_maxlen``: cap on one job's event stream (approximate) | 10000 |
| ``LUAQ_FINISHED_MAXLEN`` | ``finished_maxlen``: cap on the global stream of finished envelopes | 100000 |
| ``LUAQ_SIMULATE`` | ``simulate``: run every job against the offline simulator | false |
| ``LUAQ_SIMULATOR_URL`` | ``simulator_url``: a shared ``luaq simulator`` to use when simulating | unset: in-process simulator |
| ``LUAQ_SIMULATOR_DELAY`` | ``simulator_prediction_seconds``: how long a simulated prediction runs | 1.0 |
| ``LUAQ_MAX_SCRIPT_BYTES`` | ``max_script_bytes``: largest accepted script | 262144 |
| ``LUAQ_MAX_ARGS_BYTES`` | ``max_args_bytes``: largest accepted ``args`` (as JSON) | 262144 |
| ``LUAQ_MAX_FILES_BYTES`` | ``max_files_bytes``: largest total of attached files | 104857600 |
| ``LUAQ_WORKER_PROCESSES`` | ``worker_processes``: job-running processes per ``luaq worker`` | the number of CPUs |
| ``LUAQ_WORKER_CONCURRENCY`` | ``worker_concurrency``: jobs one process runs at once (threads pool; see :mod:`worker.supervisor`) | 100 |
| ``LUAQ_WORKER_POOL`` | ``worker_pool``: ``threads`` (many jobs per process) or ``prefork`` (one job per process) | ``threads`` |
| ``LUAQ_WORKER_MAX_MEMORY_MB`` | ``worker_max_memory_mb``: a worker process using more is drained and replaced | 1024 |
| ``LUAQ_LEASE_SECONDS`` | ``lease_seconds``: a running job's lease; a job whose worker stopped renewing it is taken over after this long | 30 |
| ``LUAQ_AGENT_MAX_RUNNING`` | ``agent_max_running``: jobs one agent (``agent_id``) may run at once across all workers; 0: no quota | 100 |
| ``LUAQ_MAX_ATTEMPTS`` | ``max_attempts``: runs of one job before it is given up as ``lost`` (each lost worker is one) | 3 |
| ``LUAQ_RATE_LIMITS`` | ``rate_limits``: per-account limits shared by all workers, ``{"<account>" or "*": {"create": [per_min, burst], "other": [...], "in_flight": n, "daily_predictions": n}}`` | Replicate's: create 600/min (burst 20), other 3000/min (burst 100); 100 in flight; no daily cap |
| ``LUAQ_METRICS_PORT`` | ``metrics_port``: where ``luaq worker``'s supervisor serves ``/metrics``, ``/healthz`` and ``/readyz`` (all interfaces); ``0`` turns the endpoint off. A port already taken stops ``luaq worker`` from starting (see :mod:`worker.health`) | 9808 |
| ``LUAQ_LIVENESS_TIMEOUT`` | ``liveness_timeout_seconds``: a worker process whose consumer has not shown progress for this long fails liveness | 30 |
| ``LUAQ_HOME`` | ``home``: where local mode keeps its state (``local.json``, data) | ``~/.luaq`` |

Limits (``instructions``, ``memory_bytes``, ``wall_clock_seconds``, ``output_bytes``,
``calls``, ``result_bytes`` and the spend caps ``predictions`` and ``writes``) default to
:class:`sandbox.Limits`'s table; each server default and maximum can be set as
``LUAQ_DEFAULT_<FIELD>`` and ``LUAQ_MAX_<FIELD>`` (e.g. ``LUAQ_MAX_WALL_CLOCK_SECONDS=600``,
``LUAQ_MAX_PREDICTIONS=20``). A job may ask for any value up to the maximum; the spend
caps' defaults are their maximums, so a job can only lower them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sandbox import Limits

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SettingsError(ValueError):
    """An environment variable holds a value luaq cannot use; the message names it."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE_WORDS


def _number(env: Mapping[str, str], name: str, default: float, kind: type = int) -> Any:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be greater than 0")
    return value


def _limits(env: Mapping[str, str]) -> tuple[Limits, Limits]:
    """Server defaults and maximums, from LUAQ_DEFAULT_<FIELD> / LUAQ_MAX_<FIELD>."""
    defaults, maximums = {}, {}
    for f in fields(Limits):
        kind = float if f.type in (float, "float") else int
        maximums[f.name] = _number(env, f"LUAQ_MAX_{f.name.upper()}", getattr(Limits.MAXIMUM, f.name), kind)
        # Lowering only the maximum lowers the built-in default with it; a spend cap's
        # default follows its maximum either way.
        builtin = min(getattr(Limits.DEFAULT, f.name), maximums[f.name])
        if f.name in Limits.SPEND_CAPS:
            builtin = maximums[f.name]
        defaults[f.name] = _number(env, f"LUAQ_DEFAULT_{f.name.upper()}", builtin, kind)
        if defaults[f.name] > maximums[f.name]:
            raise SettingsError(f"the default {f.name} ({defaults[f.name]}) is above its maximum ({maximums[f.name]})")
    return Limits(**defaults), Limits(**maximums)


def _rate_limits(env: Mapping[str, str]) -> Mapping[str, Any]:
    from .ratelimit import parse_rates

    try:
        return parse_rates(env.get("LUAQ_RATE_LIMITS"))
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"LUAQ_RATE_LIMITS: {exc}") from None


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number that may be 0 (meaning: none)."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if not raw.strip().isdigit():
        raise SettingsError(f"{name}={raw!r} must be a whole number (0 for none)")
    return int(raw)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise SettingsError(f"{name}={raw!r} must be a TCP port (0 turns it off)")
    return int(raw)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or choices[0]).strip().lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _queues(env: Mapping[str, str], default: str) -> tuple[str, ...]:
    names = [name.strip() for name in (env.get("LUAQ_QUEUES") or default).split(",") if name.strip()]
    for name in [default, *names]:
        if not QUEUE_NAME.fullmatch(name) or name.startswith("luaq:"):
            raise SettingsError(f"queue name {name!r} must be letters, digits and _ . - (LUAQ_QUEUE, LUAQ_QUEUES)")
    return tuple(dict.fromkeys([default, *names]))


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    redis_sentinel_master: str | None = None
    visibility_timeout_seconds: int | None = None
    queue: str = "luaq"
    queues: tuple[str, ...] = ("luaq",)
    job_ttl_seconds: int = 86_400
    events_maxlen: int = 10_000
    finished_maxlen: int = 100_000
    simulate: bool = False
    simulator_url: str | None = None
    simulator_prediction_seconds: float = 1.0
    max_script_bytes: int = 256 * 1024
    max_args_bytes: int = 256 * 1024
    max_files_bytes: int = 100 * 1024 * 1024
    worker_processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    worker_concurrency: int = 100
    worker_pool: str = "threads"
    worker_max_memory_mb: int = 1024
    lease_seconds: float = 30.0
    max_attempts: int = 3
    agent_max_running: int = 100
    default_limits: Limits = field(default_factory=lambda: Limits.DEFAULT)
    max_limits: Limits = field(default_factory=lambda: Limits.MAXIMUM)
    home: Path = field(default_factory=lambda: Path.home() / ".luaq")
    metrics_port: int = 9808
    liveness_timeout_seconds: float = 30.0
    rate_limits: Mapping[str, Any] = field(default_factory=dict, compare=False)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        home = Path(env.get("LUAQ_HOME") or Path.home() / ".luaq")
        queue = env.get("LUAQ_QUEUE") or "luaq"
        default_limits, max_limits = _limits(env)
        return cls(
            redis_url=env.get("LUAQ_REDIS_URL") or None,
            redis_sentinel_master=env.get("LUAQ_REDIS_SENTINEL_MASTER") or None,
            visibility_timeout_seconds=_number(env, "LUAQ_VISIBILITY_TIMEOUT", 0) or None,
            queue=queue,
            queues=_queues(env, queue),
            job_ttl_seconds=_number(env, "LUAQ_JOB_TTL", 86_400),
            events_maxlen=_number(env, "LUAQ_EVENTS_MAXLEN", 10_000),
            finished_maxlen=_number(env, "LUAQ_FINISHED_MAXLEN", 100_000),
            simulate=_flag(env.get("LUAQ_SIMULATE")),
            simulator_url=env.get("LUAQ_SIMULATOR_URL") or None,
            simulator_prediction_seconds=_number(env, "LUAQ_SIMULATOR_DELAY", 1.0, float),
            max_script_bytes=_number(env, "LUAQ_MAX_SCRIPT_BYTES", 256 * 1024),
            max_args_bytes=_number(env, "LUAQ_MAX_ARGS_BYTES", 256 * 1024),
            max_files_bytes=_number(env, "LUAQ_MAX_FILES_BYTES", 100 * 1024 * 1024),
            worker_processes=_number(env, "LUAQ_WORKER_PROCESSES", os.cpu_count() or 1),
            worker_concurrency=_number(env, "LUAQ_WORKER_CONCURRENCY", 100),
            worker_pool=_choice(env, "LUAQ_WORKER_POOL", ("threads", "prefork")),
            worker_max_memory_mb=_number(env, "LUAQ_WORKER_MAX_MEMORY_MB", 1024),
            lease_seconds=_number(env, "LUAQ_LEASE_SECONDS", 30.0, float),
            max_attempts=_number(env, "LUAQ_MAX_ATTEMPTS", 3),
            agent_max_running=_count(env, "LUAQ_AGENT_MAX_RUNNING", 100),
            metrics_port=_port(env, "LUAQ_METRICS_PORT", 9808),
            liveness_timeout_seconds=_number(env, "LUAQ_LIVENESS_TIMEOUT", 30.0, float),
            rate_limits=_rate_limits(env),
            default_limits=default_limits,
            max_limits=max_limits,
            home=home,
            environ=env,
        )

    def with_local_redis(self) -> Settings:
        """Fill ``redis_url`` from a running ``luaq up`` when none is configured."""
        if self.redis_url:
            return self
        state = read_local_state(self.home)
        if state is None:
            return self
        return replace(self, redis_url=state["redis_url"])

    @property
    def visibility_timeout(self) -> int:
        """Seconds before Redis redelivers an unacknowledged job: well above the longest
        hard time limit, so a running job is never handed to a second worker.
        ``LUAQ_VISIBILITY_TIMEOUT`` overrides it (tests; deployments whose jobs are short)."""
        if self.visibility_timeout_seconds:
            return self.visibility_timeout_seconds
        return int(self.max_limits.wall_clock_seconds * 2 + 600)


def local_state_path(home: Path) -> Path:
    return home / "local.json"


def read_local_state(home: Path) -> dict | None:
    """The state a running ``luaq up`` wrote, or None when none is running: its pid must
    be alive and, where ``/proc`` shows it, still a luaq process (a ``luaq up`` killed
    outright leaves its state behind, and its pid may since have gone to another program)."""
    path = local_state_path(home)
    try:
        state = json.loads(path.read_text())
        pid = int(state["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if _runs_luaq(pid) else None


def process_argv(pid: int) -> list[bytes] | None:
    """The command line ``pid`` runs, from ``/proc``; None when it cannot be read (the
    process has gone, or this system has no ``/proc``)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None


def _runs_luaq(pid: int) -> bool:
    """Whether ``pid`` runs ``luaq up`` (the ``luaq`` script or ``-m worker.cli``)."""
    argv = process_argv(pid)
    if argv is None:  # unreadable, or no /proc here: trust the live pid; gone: not running
        return Path(f"/proc/{pid}").exists() or not Path("/proc/self").exists()
    command = any(arg == b"worker.cli" or arg.rsplit(b"/", 1)[-1] == b"luaq" for arg in argv)
    return command and b"up" in argv
