"""structlog configuration, done once at each entry point (CLI, worker boot).

Workers log one JSON object per line; the CLI logs readable lines to stderr. Every line
logged inside a job carries ``job_id``, ``account`` and ``agent_id`` (bound with
``structlog.contextvars`` by the runner). Tokens never reach a log: nothing logs request
headers, and :func:`redact` scrubs anything that looks like a token or authorization value.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

TOKEN_PATTERN = re.compile(r"(r8_[A-Za-z0-9_]{6,}|Bearer\s+\S+|Token\s+\S+)")


def redact(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and TOKEN_PATTERN.search(value):
            event_dict[key] = TOKEN_PATTERN.sub("[redacted]", value)
    return event_dict


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(message)s"
    )
