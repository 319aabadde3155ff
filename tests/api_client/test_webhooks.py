"""verify_webhook: the vendored Svix/Replicate test vector, tolerance, bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from api_client import ArgumentError, verify_webhook

VECTOR = json.loads((Path(__file__).parent / "data" / "replicate-webhook-vector.json").read_text())
TIMESTAMP = int(VECTOR["headers"]["webhook-timestamp"])


def test_the_reference_vector_verifies():
    """The vector from replicate-javascript's tests (copied from Svix) is valid."""
    assert VECTOR["expected_valid"] is True
    assert verify_webhook(VECTOR["headers"], VECTOR["raw_body"], VECTOR["secret"]) is True
    assert verify_webhook(VECTOR["headers"], VECTOR["raw_body"].encode(), VECTOR["secret"]) is True


def test_header_names_are_matched_case_insensitively():
    headers = {name.upper(): value for name, value in VECTOR["headers"].items()}
    assert verify_webhook(headers, VECTOR["raw_body"], VECTOR["secret"])


@pytest.mark.parametrize(
    "change",
    [
        {"raw_body": '{"test": 2432232315}'},
        {"webhook-id": "msg_other"},
        {"webhook-timestamp": "1614265331"},
        {"webhook-signature": "v1,AAAA"},
        {"webhook-signature": "v2," + VECTOR["headers"]["webhook-signature"].split(",", 1)[1]},
        {"secret": "whsec_" + base64.b64encode(b"another key").decode()},
    ],
)
def test_any_change_makes_it_invalid(change):
    """A different body, id, timestamp, signature, version tag or secret fails."""
    headers = {**VECTOR["headers"], **{k: v for k, v in change.items() if k.startswith("webhook-")}}
    body = change.get("raw_body", VECTOR["raw_body"])
    secret = change.get("secret", VECTOR["secret"])
    assert verify_webhook(headers, body, secret) is False


def test_one_matching_signature_among_several_is_enough():
    signature = VECTOR["headers"]["webhook-signature"]
    headers = {**VECTOR["headers"], "webhook-signature": f"v1,bm9wZQ== {signature} v2,x"}
    assert verify_webhook(headers, VECTOR["raw_body"], VECTOR["secret"])


def test_missing_headers_are_invalid_not_errors():
    for name in VECTOR["headers"]:
        headers = {k: v for k, v in VECTOR["headers"].items() if k != name}
        assert verify_webhook(headers, VECTOR["raw_body"], VECTOR["secret"]) is False


def test_tolerance_checks_the_timestamp_against_now():
    """With a tolerance, a timestamp too far from now fails even with a good signature."""
    args = (VECTOR["headers"], VECTOR["raw_body"], VECTOR["secret"])
    assert verify_webhook(*args, tolerance=300, now=TIMESTAMP + 299)
    assert verify_webhook(*args, tolerance=300, now=TIMESTAMP - 299)
    assert not verify_webhook(*args, tolerance=300, now=TIMESTAMP + 301)
    assert not verify_webhook(*args, tolerance=300)  # the vector is from 2021


def test_a_secret_without_the_prefix_is_accepted():
    assert verify_webhook(VECTOR["headers"], VECTOR["raw_body"], VECTOR["secret"].removeprefix("whsec_"))


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!"])
def test_a_malformed_secret_is_an_argument_error(secret):
    with pytest.raises(ArgumentError, match="secret"):
        verify_webhook(VECTOR["headers"], VECTOR["raw_body"], secret)


def test_signatures_made_the_documented_way_verify():
    """Sign "{id}.{timestamp}.{body}" with the decoded key, as the vector's algorithm says."""
    key = base64.b64decode(VECTOR["secret"].split("_", 1)[1])
    signed = VECTOR["signed_content"].encode()
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{signature}" == VECTOR["headers"]["webhook-signature"]
