"""The one admin-token check (canary_common.auth), as the router and the controller use it."""

import pytest

from canary_common.auth import refusal


def test_no_token_set_lets_every_call_through():
    assert refusal("", None) is None and refusal("", "Bearer anything") is None


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic c2VjcmV0", "s3cret"])
def test_a_missing_or_malformed_header_is_told_what_to_send(header):
    assert "send 'Authorization: Bearer <ADMIN_TOKEN>'" in refusal("s3cret", header)


@pytest.mark.parametrize("header", ["Bearer wrong", "Bearer s3cret-", "Bearer S3CRET"])
def test_a_wrong_token_is_refused(header):
    assert refusal("s3cret", header) == "admin endpoint: wrong admin token"


@pytest.mark.parametrize("header", ["Bearer s3cret", "bearer s3cret", "Bearer  s3cret "])
def test_the_token_passes_whatever_the_scheme_case_and_spaces(header):
    assert refusal("s3cret", header) is None
