"""ops/: compose.yaml, the Dockerfile, Prometheus, KEDA and Grafana files are valid and agree.

No Docker engine or compose plugin runs in CI, so compose.yaml is validated against the
compose-spec JSON schema vendored in ops/compose-spec.json (never fetched at test time),
plus the cross-references `docker compose config` resolves. Where the plugin is
installed, `docker compose config` runs too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from tests.conftest import REPO

METRICS = {
    "luaq_jobs_total", "luaq_job_duration_seconds", "luaq_queue_wait_seconds", "luaq_jobs_running",
    "luaq_jobs_waiting", "luaq_instructions_total", "luaq_integration_calls_total", "luaq_rate_limit_waits_total",
    "luaq_rate_limit_429_total", "luaq_limit_hits_total", "luaq_queue_depth",
}  # fmt: skip


def load_yaml(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def test_compose_file_matches_the_compose_spec_schema():
    """compose.yaml validates against the official compose-spec schema."""
    schema = json.loads((REPO / "ops" / "compose-spec.json").read_text())
    compose = load_yaml("compose.yaml")
    # The schema names draft 2019-09 but is written in draft-07 terms (as compose-go reads it).
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_references_resolve():
    """Everything compose.yaml points at exists: services, volumes, build files, mounted configs."""
    compose = load_yaml("compose.yaml")
    services = compose["services"]
    assert {"redis", "worker", "flower", "prometheus", "simulator"} <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).is_file(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"
        if "build" in service:
            assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    redis = services["redis"]["command"]
    assert redis[redis.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert "healthcheck" in services["redis"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale worker=N` needs both absent
    assert worker["environment"]["LUAQ_METRICS_PORT"] == "9808"
    assert worker["healthcheck"]["test"] == ["CMD", "luaq", "health", "--live"]
    assert services["simulator"]["profiles"] == ["offline"]


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_compose_config_when_the_plugin_is_installed():
    """`docker compose config` accepts the file (skipped where the compose plugin is missing)."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed; the schema test stands in for it")
    result = subprocess.run(["docker", "compose", "-f", str(REPO / "compose.yaml"), "--profile", "offline",
                             "config", "--quiet"], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_dockerfile_is_multi_stage_and_runs_unprivileged():
    text = (REPO / "ops" / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)[1:]
    assert len(stages) == 2 and stages[0].split()[2] == "build"
    final = stages[1]
    assert "COPY --from=build /opt/luaq /opt/luaq" in final
    assert "build-essential" not in final and "apt-get install" not in final
    user = re.search(r"(?m)^USER (\S+)", final).group(1)
    assert user.split(":")[0] not in ("root", "0")
    for source in re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", text):
        for path in source.split():
            assert (REPO / path).exists(), path
    assert ".venv" in (REPO / ".dockerignore").read_text()


def _metric_names(text: str) -> set[str]:
    return {name.removesuffix("_bucket") for name in re.findall(r"\bluaq_[a-z0-9_]+", text)}


def test_prometheus_scrapes_the_workers_and_alerts_use_known_metrics():
    config = load_yaml("ops/prometheus/prometheus.yml")
    [job] = config["scrape_configs"]
    assert job["dns_sd_configs"][0] == {"names": ["worker"], "type": "A", "port": 9808, "refresh_interval": "15s"}
    alerts = load_yaml("ops/prometheus/alerts.yml")
    rules = [rule for group in alerts["groups"] for rule in group["rules"]]
    assert all(rule["alert"].startswith("Luaq") and rule["expr"] for rule in rules)
    used = set().union(*(_metric_names(rule["expr"]) for rule in rules))
    assert used <= METRICS, used - METRICS
    runbook = (REPO / "ops" / "RUNBOOK.md").read_text()
    for rule in rules:
        assert rule["alert"] in runbook, f"the runbook does not explain {rule['alert']}"


def test_grafana_dashboard_covers_every_metric():
    dashboard = json.loads((REPO / "ops" / "grafana" / "luaq.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert _metric_names("\n".join(exprs)) == METRICS
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_keda_scales_on_waiting_and_reserved_work():
    scaled = load_yaml("ops/keda/scaledobject.yaml")
    assert scaled["kind"] == "ScaledObject" and scaled["apiVersion"] == "keda.sh/v1alpha1"
    triggers = {trigger["type"]: trigger["metadata"] for trigger in scaled["spec"]["triggers"]}
    assert "luaq_queue_depth" in triggers["prometheus"]["query"]
    assert triggers["redis"]["listName"] == "luaq"
    assert scaled["spec"]["cooldownPeriod"] >= 340


def test_runbook_commands_are_real_luaq_commands():
    """Every `luaq <command>` the runbook shows exists, with the options it uses."""
    from click.testing import CliRunner

    from worker.cli import cli

    runbook = (REPO / "ops" / "RUNBOOK.md").read_text()
    used = re.findall(r"(?m)(?:`|^|worker )luaq ([a-z]+)((?: --?[a-z][a-z-]*)*)", runbook)
    assert used
    for command, flags in used:
        assert command in cli.commands, f"runbook uses unknown command luaq {command}"
        help_text = CliRunner().invoke(cli, [command, "--help"]).output
        for flag in flags.split():
            assert flag in help_text, f"luaq {command} has no option {flag}"


def _help(command: str) -> str:
    from click.testing import CliRunner

    from worker.cli import cli

    assert command in cli.commands, f"unknown command luaq {command}"
    return CliRunner().invoke(cli, [command, "--help"]).output


FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][a-z-]*)")


def test_readme_command_table_flags_are_real_options():
    """Every flag a row of the README's command table names is an option of that command
    (the submit row's "except --allow-read and --dry-run" names flags it does not have)."""
    table = (REPO / "README.md").read_text().split("### Commands", 1)[1].split("\nExit status:", 1)[0]
    rows = [row for row in table.splitlines() if row.startswith("| `luaq ")]
    assert len(rows) >= 12
    for row in rows:
        command = row.split()[2].strip("`")
        help_text = _help(command)
        row = row.split("except", 1)[0] if command == "submit" else row
        for flag in set(FLAG.findall(row)):
            assert flag in help_text, f"README: luaq {command} has no option {flag}"


def test_readme_inline_commands_are_real():
    """Every `luaq <command> ...` in the README, in its text or its shell examples, names a
    command and options it has."""
    readme = (REPO / "README.md").read_text()
    used = re.findall(r"`luaq ([a-z]+)((?: [^`|]*)?)`", readme)
    for block in re.findall(r"(?s)```sh\n(.*?)```", readme):
        used += re.findall(r"(?m)(?:^|[\s/])luaq ([a-z]+)([^#\n]*)", block)
    assert len(used) > 40
    for command, rest in used:
        help_text = _help(command)
        for flag in FLAG.findall(rest):
            assert flag in help_text, f"README: luaq {command} has no option {flag}"


def test_every_option_says_what_it_does():
    """`luaq <command> --help` describes each of its options."""
    import click

    from worker.cli import cli

    missing = [f"luaq {name} {param.opts[0]}" for name, command in cli.commands.items() for param in command.params
               if isinstance(param, click.Option) and not param.help]  # fmt: skip
    assert missing == []
