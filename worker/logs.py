"""structlog configuration, done once at each entry point (CLI, worker boot).

Workers log one JSON object per line on stderr, their own lines and Celery's alike (the
standard library's records go through the same processors); the CLI logs readable lines.
Every line logged inside a job carries ``job_id``, ``account`` and ``agent_id`` (bound with
``structlog.contextvars`` by the runner). Tokens never reach a log: nothing logs request
headers, and :func:`redact` scrubs anything that looks like a token or an authorization
value.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

TOKEN_PATTERN = re.compile(r"(r8_[A-Za-z0-9_]{6,}|Bearer\s+\S+|Token\s+\S+)")

# Libraries whose INFO lines are noise here (httpx logs every request URL).
QUIET_LOGGERS = ("httpx", "httpcore")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return TOKEN_PATTERN.sub("[redacted]", value) if TOKEN_PATTERN.search(value) else value
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def redact(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Scrub token-like strings anywhere in the event, tracebacks included (so it runs
    after ``format_exc_info``)."""
    return {key: _scrub(value) for key, value in event_dict.items()}


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
