"""`luaq run --dry-run` and the spend-cap flags: what a script would write, reported without
writing anything."""

from __future__ import annotations

import json

from click.testing import CliRunner

from worker.cli import cli

SCRIPT = """
local account = app.integrations.replicate.get_account({})
local p = app.integrations.replicate.create_prediction({
  version = "replicate-version-id", input = { prompt = "a cat" },
})
app.integrations.replicate.cancel_prediction({ prediction_id = p.id })
print("created " .. p.id)
return account.username
"""


def run(*args: str, env: dict | None = None):
    environment = {"REPLICATE_API_TOKEN": "r8_must_never_be_used", "LUAQ_REDIS_URL": None, **(env or {})}
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def test_dry_run_reports_each_write_call_in_the_envelope():
    """--dry-run runs against the simulator with writes allowed (no --force, a real token
    set) and lists the write calls, in order, with their arguments; reads are not listed."""
    result = run("run", "--dry-run", "--json", "--eval", SCRIPT)
    envelope = json.loads(result.stdout)
    assert result.exit_code == 0, envelope["error"]
    assert envelope["result"] == ["luaq-sim"]  # the simulator's account, not the token's
    assert envelope["meta"]["permission_bypassed"] is True
    calls = envelope["meta"]["dry_run"]["write_calls"]
    assert [c["operation"] for c in calls] == ["replicate.create_prediction", "replicate.cancel_prediction"]
    assert calls[0] == {
        "operation": "replicate.create_prediction",
        "account": "default",
        "args": {"version": "replicate-version-id", "input": {"prompt": "a cat"}},
    }
    assert "r8_must_never_be_used" not in result.stdout


def test_dry_run_text_mode_lists_the_write_calls_after_the_result():
    """Without --json, the output and result come first, then one numbered line per write call."""
    result = run("run", "--dry-run", "--eval", SCRIPT)
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert lines[0].startswith("created ") and lines[1] == "luaq-sim"
    assert lines[2] == "dry run: 2 write calls would be made (simulated; nothing was sent to Replicate):"
    assert lines[3].startswith("  1. replicate.create_prediction [default] {")
    assert json.loads(lines[3].split("] ", 1)[1]) == {"version": "replicate-version-id", "input": {"prompt": "a cat"}}
    assert lines[4].startswith("  2. replicate.cancel_prediction [default]")


def test_dry_run_of_a_read_only_script_says_so():
    """A script that only reads gets a report saying it would write nothing."""
    result = run("run", "--dry-run", "--eval", "return app.integrations.replicate.get_account({}).type")
    assert result.stdout.splitlines()[-1] == "dry run: no write calls (simulated; nothing was sent to Replicate)"


def test_dry_run_shortens_long_and_binary_arguments():
    """A long string argument is shortened in the report."""
    script = 'app.integrations.replicate.create_prediction({ version = "replicate-version-id", input = { prompt = string.rep("a", 1000) } })'
    envelope = json.loads(run("run", "--dry-run", "--json", "--eval", script).stdout)
    prompt = envelope["meta"]["dry_run"]["write_calls"][0]["args"]["input"]["prompt"]
    assert prompt.endswith("… (1000 chars)") and len(prompt) < 400


def test_the_cap_flags_stop_a_create_loop():
    """--max-predictions lowers the job's prediction cap; the loop ends with limit_exceeded
    and the dry-run report lists only the calls that were made."""
    loop = 'while true do app.integrations.replicate.create_prediction({ version = "replicate-version-id", input = { prompt = "x" } }) end'
    result = run("run", "--dry-run", "--json", "--max-predictions", "2", "--eval", loop)
    envelope = json.loads(result.stdout)
    assert result.exit_code == 1
    assert envelope["status"] == "limit_exceeded" and envelope["error"]["limit"] == "predictions"
    assert len(envelope["meta"]["dry_run"]["write_calls"]) == 2
    writes = run("run", "--dry-run", "--json", "--limits", '{"writes": 1}', "--eval", loop)
    assert json.loads(writes.stdout)["error"]["limit"] == "writes"


def test_a_cap_above_the_deployments_is_a_usage_error():
    """A job cannot raise a spend cap above the deployment's."""
    result = run("run", "--simulate", "--json", "--max-predictions", "1000", "--eval", "return 1")
    assert result.exit_code == 2
    assert "above the maximum of 100 predictions" in json.loads(result.stdout)["error"]["message"]
