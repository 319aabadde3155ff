"""`luaq run`: one script, here, no queue; the reference runner's flags and output."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from worker.cli import cli

# The seven "Common Patterns" of the agent-facing reference, verbatim.
COMMON_PATTERNS = {
    "read account": """local account = app.integrations.replicate.get_account({})""",
    "prediction by version": """local prediction = app.integrations.replicate.create_prediction({
version = "replicate-version-id",
input = { prompt = "a quiet forest trail" }
})""",
    "official model": """local prediction = app.integrations.replicate.create_model_prediction({
model_owner = "black-forest-labs",
model_name = "flux-schnell",
input = { prompt = "a quiet forest trail" }
})""",
    "deployment": """local prediction = app.integrations.replicate.create_deployment_prediction({
deployment_owner = "example-org",
deployment_name = "image-worker",
input = { prompt = "a quiet forest trail" }
})""",
    "cancel": """app.integrations.replicate.cancel_prediction({
prediction_id = "prediction-id"
})""",
    "search": """local result = app.integrations.replicate.search_models({
body = "image generation"
})""",
    "upload": """local file = app.integrations.replicate.create_file({
body = {
content = "/tmp/example.png",
filename = "example.png",
type = "image/png",
metadata = { source = "agent" }
}
})""",
}

# The same calls under the long names and the slugs of names.md.
RENAMES = {
    "long": {
        "get_account": "get_authenticated_account",
        "create_model_prediction": "create_prediction_using_official_model",
        "create_deployment_prediction": "create_prediction_using_deployment",
        "search_models": "search_public_models",
    },
    "slug": {
        name: f"replicate_{name}"
        for name in [
            "get_account",
            "create_prediction",
            "create_model_prediction",
            "create_deployment_prediction",
            "cancel_prediction",
            "search_models",
            "create_file",
        ]
    },
}


def run(*args: str, env: dict | None = None):
    runner = CliRunner()
    result = runner.invoke(
        cli,
        list(args),
        env={"REPLICATE_API_TOKEN": None, "LUAQ_REDIS_URL": None, **(env or {})},
        catch_exceptions=False,
    )
    return result


def envelope_of(result) -> dict:
    return json.loads(result.stdout)


@pytest.fixture
def example_png():
    path = Path("/tmp/example.png")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    return path


def test_get_account_through_the_simulator():
    """`luaq run --simulate --json --eval 'dump(...get_account({}))'` succeeds with the account in output."""
    result = run("run", "--simulate", "--json", "--eval", "dump(app.integrations.replicate.get_account({}))")
    envelope = envelope_of(result)
    assert result.exit_code == 0
    assert envelope["success"] is True
    assert envelope["status"] == "succeeded"
    account = json.loads(envelope["output"])
    assert account["type"] in ("user", "organization")
    assert account["username"]
    assert envelope["integration_calls"][0]["status"] == "ok"


@pytest.mark.parametrize("name", sorted(COMMON_PATTERNS))
def test_common_patterns_run_unchanged(name, example_png):
    """Each Common Patterns snippet of the reference runs as written (uploads only from --allow-read)."""
    result = run(
        "run",
        "--simulate",
        "--force",
        "--json",
        "--allow-read",
        "/tmp",
        "--eval",
        COMMON_PATTERNS[name],
    )
    envelope = envelope_of(result)
    assert envelope["success"] is True, envelope["error"]
    assert result.exit_code == 0
    assert all(call["status"] == "ok" for call in envelope["integration_calls"])


@pytest.mark.parametrize("form", ["long", "slug"])
@pytest.mark.parametrize("name", sorted(COMMON_PATTERNS))
def test_common_patterns_under_long_and_slug_names(form, name, example_png):
    """The same snippets work when called by their long names and by their slugs."""
    code = COMMON_PATTERNS[name]
    for short, other in RENAMES[form].items():
        code = code.replace(f"replicate.{short}(", f"replicate.{other}(")
    result = run("run", "--simulate", "--force", "--json", "--allow-read", "/tmp", "--eval", code)
    envelope = envelope_of(result)
    assert envelope["success"] is True, envelope["error"]


def test_upload_without_allow_read_never_reads_the_host_path(example_png):
    """Without --allow-read, a host path in create_file is a clear error, not an upload of the file."""
    result = run("run", "--simulate", "--force", "--json", "--eval", COMMON_PATTERNS["upload"])
    envelope = envelope_of(result)
    assert result.exit_code == 1
    assert envelope["success"] is False
    assert "--allow-read" in envelope["error"]["message"]


def test_text_mode_prints_output_then_result():
    """Without --json, printed lines come first, then the returned values."""
    result = run("run", "--eval", 'print("hello") return 42, "x"')
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["hello", "42", "x"]


def test_stdin_script(tmp_path):
    """`luaq run -` reads the script from stdin."""
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "--json", "-"], input="return 1 + 1")
    assert envelope_of(result)["result"] == [2]


def test_file_script_and_args(tmp_path):
    """A script file runs with --args visible as job.args, and errors name the file."""
    path = tmp_path / "flow.lua"
    path.write_text("return job.args.n * 2\n")
    assert envelope_of(run("run", "--json", str(path), "--args", '{"n": 21}'))["result"] == [42]
    path.write_text("local x = 1\nerror('boom')\n")
    envelope = envelope_of(run("run", "--json", str(path)))
    assert envelope["error"]["line"] == 2
    assert "flow.lua:2" in envelope["error"]["message"]


# -- bad input: a clear error and a failed envelope, never a traceback -------------------


def test_syntax_error_names_the_line():
    """A Lua syntax error fails with its line number."""
    result = run("run", "--json", "--eval", "local x = 1\nlocal y = = 2")
    envelope = envelope_of(result)
    assert result.exit_code == 1
    assert envelope["error"]["type"] == "syntax"
    assert envelope["error"]["line"] == 2
    assert "Traceback" not in result.output


def test_unknown_function_names_the_nearest():
    """Calling a function that does not exist suggests the nearest names."""
    envelope = envelope_of(run("run", "--simulate", "--json", "--eval", "app.integrations.replicate.get_acount({})"))
    assert envelope["error"]["type"] == "validation"
    assert "get_account" in envelope["error"]["message"]


def test_unknown_account_in_lua_names_the_accounts():
    """An unknown account in a Lua path is an error naming the valid ones."""
    envelope = envelope_of(
        run(
            "run",
            "--simulate",
            "--json",
            "--eval",
            "app.integrations.replicate.wrok.get_account({})",
        )
    )
    assert envelope["error"]["type"] == "validation"
    assert "default" in envelope["error"]["message"]


def test_unknown_account_flag_is_a_usage_error():
    """--account naming an unconfigured account is refused with exit 2 and a rejected envelope."""
    result = run("run", "--simulate", "--json", "--account", "work", "--eval", "return 1")
    assert result.exit_code == 2
    envelope = envelope_of(result)
    assert envelope["status"] == "rejected"
    assert "work" in envelope["error"]["message"]


def test_named_account_from_environment():
    """An account configured as REPLICATE_API_TOKEN_<NAME> is callable by name."""
    code = "return app.integrations.replicate.work.get_account({}).username"
    result = run("run", "--simulate", "--json", "--eval", code, env={"REPLICATE_API_TOKEN_WORK": "r8_x"})
    assert envelope_of(result)["success"] is True


def test_write_without_force_is_denied():
    """A write call without --force fails with permission_denied and makes no request."""
    envelope = envelope_of(
        run(
            "run",
            "--simulate",
            "--json",
            "--eval",
            'app.integrations.replicate.cancel_prediction({prediction_id="prediction-id"})',
        )
    )
    assert envelope["error"]["type"] == "permission"
    assert "--force" in envelope["error"]["message"]
    assert envelope["integration_calls"] == [] or envelope["integration_calls"][0]["status"] == "error"


def test_no_token_and_no_simulate_is_a_clear_error():
    """Without a token or --simulate, a Replicate call fails saying how to fix it."""
    envelope = envelope_of(run("run", "--json", "--eval", "app.integrations.replicate.get_account({})"))
    assert envelope["success"] is False
    assert "REPLICATE_API_TOKEN" in envelope["error"]["message"]
    assert "--simulate" in envelope["error"]["message"]


def test_malformed_args_json_is_a_usage_error():
    """--args that is not JSON is refused with exit 2 and a rejected envelope."""
    result = run("run", "--json", "--eval", "return 1", "--args", "{not json")
    assert result.exit_code == 2
    assert "not valid JSON" in envelope_of(result)["error"]["message"]


def test_empty_script_is_a_usage_error():
    """An empty script is refused with exit 2 and a rejected envelope."""
    result = run("run", "--json", "--eval", "   ")
    assert result.exit_code == 2
    assert envelope_of(result)["error"]["message"].startswith("the script is empty")


def test_runtime_error_exit_status_in_text_mode():
    """A failing script exits 1 and reports the error on stderr, not a traceback."""
    result = run("run", "--eval", "error('nope')")
    assert result.exit_code == 1
    assert "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_docs_pages_and_unknown_page():
    """`luaq docs PAGE` prints a page; an unknown page exits 1 with suggestions."""
    page = run("docs", "replicate.create_prediction")
    assert page.exit_code == 0
    for shown in (
        "## Parameters",
        "Cancel-After",
        "## Body fields",
        "| input | object | yes",
        "| version | string | yes",
    ):
        assert shown in page.stdout
    missing = run("docs", "replicate.create_predictoin")
    assert missing.exit_code == 1
    assert "create_prediction" in missing.stdout


def test_limit_flags_reach_the_sandbox():
    """--max-instructions, --timeout, --memory-limit and --max-output set the job's limits."""
    spin = envelope_of(run("run", "--json", "--max-instructions", "100000", "--eval", "while true do end"))
    assert spin["status"] == "limit_exceeded"
    loud = envelope_of(run("run", "--json", "--max-output", "100", "--eval", "for i = 1, 100 do print(i) end"))
    assert loud["status"] == "limit_exceeded"
    too_much = run("run", "--json", "--memory-limit", str(10**13), "--eval", "return 1")
    assert too_much.exit_code == 2
    assert "memory_bytes" in envelope_of(too_much)["error"]["message"]
