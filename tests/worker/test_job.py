"""The submission contract: what JobRequest accepts and how it says no."""

import base64

import pytest

from worker.job import JobRequest, SubmissionError


def test_minimal_submission_gets_defaults(settings):
    """A script alone is a valid submission; everything else has a default."""
    request = JobRequest.from_dict({"script": "return 1"}, settings)
    assert request.account == "default"
    assert request.allow_writes is False
    assert len(request.job_id) == 32


def test_round_trip_through_storage_keeps_attachments(settings):
    """A stored request rebuilds to an equal one, attachment bytes included."""
    files = {"a.png": base64.b64encode(b"\x89PNG").decode()}
    request = JobRequest.from_dict({"script": "return 1", "files": files, "args": {"n": 1}}, settings)
    assert JobRequest.from_stored(request.to_dict()) == request
    assert request.files["a.png"] == b"\x89PNG"


@pytest.mark.parametrize(
    ("submission", "message"),
    [
        ([], "must be a JSON object"),
        ({"script": "  "}, "script is empty"),
        ({"script": "return '\ud800'"}, "not valid Unicode"),
        ({"script": "return 1", "args": False}, "args must be a JSON object"),
        ({"script": "return 1", "args": {"x": float("nan")}}, "only JSON values"),
        ({"script": "return 1", "args": {"x": object()}}, "only JSON values"),
        ({"script": "return 1", "metadata": {"m": "x" * 300_000}}, "metadata is"),
        ({"script": "return 1", "job_id": "abc\n"}, "job_id must be"),
        ({"script": "return 1", "queue": "luaq:finished"}, "unknown queue"),
        ({}, "the submission has no script"),
        ({"script": 5}, "script must be a string"),
        ({"script": "return 1", "colour": 1}, "unknown field(s) in submission: colour"),
        ({"script": "return 1", "args": [1]}, "args must be a JSON object"),
        ({"script": "return 1", "account": "Bad Name"}, "account must be"),
        ({"script": "return 1", "allow_writes": "yes"}, "allow_writes must be true or false"),
        ({"script": "return 1", "limits": {"memory_bytes": 10**12}}, "memory_bytes"),
        ({"script": "return 1", "limits": {"bogus": 1}}, "bogus"),
        ({"script": "return 1", "priority": 12}, "priority must be"),
        ({"script": "return 1", "job_id": "../x"}, "job_id must be"),
        ({"script": "return 1", "files": {"a": "%%%"}}, "not valid base64"),
        ({"script": "return 1", "agent_id": "a\ud800"}, "agent_id contains text that is not valid Unicode"),
        ({"script": "return 1", "file": "x\udfff.lua"}, "file contains text that is not valid Unicode"),
    ],
)
def test_bad_submissions_name_the_problem(settings, submission, message):
    """Each kind of bad submission is refused with a message naming the field at fault."""
    with pytest.raises(SubmissionError) as caught:
        JobRequest.from_dict(submission, settings)
    assert message in str(caught.value)


def test_script_over_size_limit_is_refused(settings):
    """A script larger than max_script_bytes is refused, naming the limit."""
    big = "-- " + "x" * settings.max_script_bytes
    with pytest.raises(SubmissionError, match="limit is"):
        JobRequest.from_dict({"script": big}, settings)


def test_file_names_the_script_and_reads_nothing(settings, tmp_path):
    """``file`` is only the script's name for messages; no submitter-side path is read."""
    path = tmp_path / "flow.lua"
    path.write_text("return 2")
    request = JobRequest.from_dict({"script": "return 1", "file": str(path.name)}, settings)
    assert request.file == "flow.lua"
    assert request.script == "return 1"
    with pytest.raises(SubmissionError, match="the submission has no script"):
        JobRequest.from_dict({"file": str(path)}, settings)


def test_deeply_nested_args_are_refused_not_crashed_on(settings):
    """args nested beyond what JSON encoding handles get a SubmissionError, not RecursionError."""
    nested: dict = {}
    node = nested
    for _ in range(100_000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(SubmissionError, match="nested too deeply"):
        JobRequest.from_dict({"script": "return 1", "args": nested}, settings)


def test_server_limits_come_from_the_environment():
    """LUAQ_MAX_<FIELD> caps what jobs may ask (and the default with it); LUAQ_DEFAULT_<FIELD> sets the default."""
    from worker.settings import Settings, SettingsError

    settings = Settings.from_env({"LUAQ_MAX_WALL_CLOCK_SECONDS": "5", "LUAQ_DEFAULT_CALLS": "7"})
    assert settings.max_limits.wall_clock_seconds == 5
    assert settings.default_limits.wall_clock_seconds == 5
    assert settings.default_limits.calls == 7
    with pytest.raises(SubmissionError, match="wall_clock_seconds"):
        JobRequest.from_dict({"script": "return 1", "limits": {"wall_clock_seconds": 10}}, settings)
    with pytest.raises(SettingsError, match="LUAQ_JOB_TTL"):
        Settings.from_env({"LUAQ_JOB_TTL": "-5"})
    with pytest.raises(SettingsError, match="above its maximum"):
        Settings.from_env({"LUAQ_DEFAULT_CALLS": "50", "LUAQ_MAX_CALLS": "10"})
