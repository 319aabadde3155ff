"""Worker logging: JSON lines, bound job context, no secrets."""

import json
import logging

import structlog

from worker.logs import configure_logging


def test_json_lines_bind_context_and_redact_tokens(capsys):
    """A log line is one JSON object carrying bound context, with token-like values scrubbed everywhere."""
    configure_logging(json=True, level="INFO")
    with structlog.contextvars.bound_contextvars(job_id="j1", account="default", agent_id="a"):
        structlog.get_logger("t").info("call", headers={"Authorization": "Bearer r8_abcdefgh123"})
        try:
            raise RuntimeError("token r8_abcdefgh123 leaked")
        except RuntimeError:
            logging.getLogger("celery.x").exception("stdlib failure")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["job_id"] == "j1" and lines[0]["agent_id"] == "a"
    assert "r8_abcdefgh123" not in json.dumps(lines)
    assert lines[1]["event"] == "stdlib failure"
    assert "[redacted]" in lines[1]["exception"]
