"""The error hierarchy, retry-after parsing, and accounts from the environment."""

from __future__ import annotations

import pytest

from api_client import (
    DEFAULT_BASE_URL,
    Account,
    APIError,
    ArgumentError,
    ConfigurationError,
    NotFound,
    RateLimited,
    ReplicateError,
    TransportError,
    Unauthorized,
    ValidationFailed,
    accounts_from_env,
    simulated_accounts,
)
from api_client._retry_after import retry_after_seconds


def test_every_error_is_a_replicate_error_with_an_error_type():
    """Callers can catch ReplicateError and report error_type."""
    cases = {
        ArgumentError("x"): "argument_error",
        ConfigurationError("x"): "configuration_error",
        TransportError("x"): "transport_error",
        APIError(500, operation="get_account"): "api_error",
        RateLimited(429, operation="get_account"): "api_error",
    }
    for error, error_type in cases.items():
        assert isinstance(error, ReplicateError)
        assert error.error_type == error_type


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, Unauthorized),
        (404, NotFound),
        (422, ValidationFailed),
        (429, RateLimited),
        (500, APIError),
    ],
)
def test_for_status_picks_the_most_specific_class(status, cls):
    """Each documented status has its subclass; others use APIError."""
    assert APIError.for_status(status) is cls


def test_api_error_text_uses_title_or_reason_phrase():
    """The title wins over the reason phrase; a missing detail leaves no trailing colon."""
    assert str(APIError(422, operation="create_prediction", title="Bad", detail="d")) == (
        "replicate.create_prediction: 422 Bad: d"
    )
    assert str(APIError(404, operation="get_file", detail="File not found")) == (
        "replicate.get_file: 404 Not Found: File not found"
    )
    assert str(APIError(503, operation="get_account")) == ("replicate.get_account: 503 Service Unavailable")


def test_retry_after_prefers_body_then_header_then_detail():
    """The body's retry_after beats the header, which beats the detail text."""
    assert retry_after_seconds(5, "9", "~30s", now=0) == 5.0
    assert retry_after_seconds(None, "9", "~30s", now=0) == 9.0
    assert retry_after_seconds(None, None, "resets in ~30s.", now=0) == 30.0
    assert retry_after_seconds(None, "Thu, 01 Jan 1970 00:01:40 GMT", None, now=40) == 60.0
    assert retry_after_seconds(None, "soon", "no number here", now=0) is None


def test_accounts_from_env_always_has_default():
    """With no variables at all there is still a default account, without a token."""
    accounts = accounts_from_env({})
    assert list(accounts) == ["default"]
    assert accounts["default"].token is None
    assert accounts["default"].base_url == DEFAULT_BASE_URL


def test_named_tokens_become_lower_case_accounts_and_base_url_applies():
    """REPLICATE_API_TOKEN_<NAME> adds <name>; REPLICATE_BASE_URL changes every base URL."""
    accounts = accounts_from_env(
        {
            "REPLICATE_API_TOKEN": "r8_a",
            "REPLICATE_API_TOKEN_WORK": "r8_b",
            "REPLICATE_API_TOKEN_EMPTY": "",
            "REPLICATE_BASE_URL": "http://127.0.0.1:8787/v1/",
            "OTHER": "x",
        }
    )
    assert sorted(accounts) == ["default", "work"]
    assert (accounts["work"].token, accounts["work"].base_url) == (
        "r8_b",
        "http://127.0.0.1:8787/v1",
    )
    assert accounts["default"].token == "r8_a"


def test_default_suffix_is_only_a_fallback():
    """REPLICATE_API_TOKEN_DEFAULT is used only when REPLICATE_API_TOKEN is unset."""
    both = {"REPLICATE_API_TOKEN": "plain", "REPLICATE_API_TOKEN_DEFAULT": "suffix"}
    assert accounts_from_env(both)["default"].token == "plain"
    assert accounts_from_env({"REPLICATE_API_TOKEN_DEFAULT": "suffix"})["default"].token == "suffix"


def test_account_repr_hides_the_token():
    """An Account's repr shows its name and base URL, never its token."""
    account = Account("work", "r8_very_secret")
    assert "r8_very_secret" not in repr(account)
    assert repr(account) == f"Account(name='work', base_url='{DEFAULT_BASE_URL}')"


def test_simulated_accounts_hold_simulator_tokens():
    """Each simulated account has the token r8_sim_<name>; default is always there."""
    accounts = simulated_accounts(["work"], base_url="http://localhost:1/v1")
    assert {name: a.token for name, a in accounts.items()} == {
        "default": "r8_sim_default",
        "work": "r8_sim_work",
    }
    assert accounts["work"].base_url == "http://localhost:1/v1"


def test_a_named_account_may_carry_its_own_base_url():
    """REPLICATE_BASE_URL_<NAME> sets one account's base URL; the others keep the shared one."""
    accounts = accounts_from_env(
        {
            "REPLICATE_API_TOKEN": "r8_a",
            "REPLICATE_API_TOKEN_WORK": "r8_b",
            "REPLICATE_API_TOKEN_LAB": "r8_c",
            "REPLICATE_BASE_URL": "https://proxy.example/v1",
            "REPLICATE_BASE_URL_WORK": "http://127.0.0.1:9000/v1/",
            "REPLICATE_BASE_URL_NOBODY": "http://unused/v1",
        }
    )
    assert {name: a.base_url for name, a in accounts.items()} == {
        "default": "https://proxy.example/v1",
        "lab": "https://proxy.example/v1",
        "work": "http://127.0.0.1:9000/v1",
    }


def test_retry_after_ignores_values_that_are_not_finite_seconds():
    """NaN, infinity, booleans and junk in retry_after fall through to the next source."""
    assert retry_after_seconds(float("nan"), None, None, now=0) is None
    assert retry_after_seconds(True, "2", None, now=0) == 2.0
    assert retry_after_seconds("3", None, None, now=0) == 3.0
    assert retry_after_seconds(None, "1e999", None, now=0) is None
    assert retry_after_seconds(None, "Mon, 99 Foo 2099 99:99:99 GMT", None, now=0) is None
