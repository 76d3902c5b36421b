"""Input checks of the router: each bad input is refused with a message naming the problem."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary_router.datapath.validation import BadInput, check_label, parse_percentage, parse_predict_body, parse_switch


def test_good_bodies():
    assert parse_predict_body(b'{"text": "great"}').text == "great"
    req = parse_predict_body(b'{"text": "bad", "actual_label": 0, "extra": 1}')
    assert req.actual_label == 0


@pytest.mark.parametrize(
    "raw,words",
    [
        (b"", "empty"),
        (b"  ", "empty"),
        (b"{", "not valid JSON"),
        (b"\xff", "UTF-8"),
        (b"null", "got null"),
        (b"[]", "got list"),
        (b"3", "JSON object"),
        (b"{}", "'text' is missing"),
        (b'{"text": 1}', "got integer"),
        (b'{"text": ["a"]}', "got array"),
        (b'{"text": ""}', "must not be empty"),
        (b'{"text": "\\n\\t"}', "must not be empty"),
        (b'{"text": "a", "actual_label": ""}', "non-empty string"),
        (b'{"text": "a", "actual_label": [1, 0]}', "2 value"),
        (b'{"text": "a", "actual_label": []}', "empty list"),
        (b'{"text": "a", "actual_value": "2"}', "finite number"),
        (b'{"text": "a", "actual_value": 1, "actual_label": 1}', "not both"),
        (b'{"text": "a", "instances": [[1]]}', "not both"),
        (b'{"inputs": [1], "instances": [[1]]}', "exactly one"),
        (b'{"instances": []}', "no rows"),
        (b'{"instances": [[1], [2]], "actual_value": [1.5]}', "for 2 row"),
        (b'{"instances": [[1]], "actual_value": [1e999]}', "finite number"),
        (b'{"instances": [[1]], "x": 1}', "unexpected"),
        (b'{"instances": [[1]], "actual_label": [{"a": 1}]}', "got object"),
        (b'{"inputs": [1], "params": [1]}', "'params'"),
        (b'{"text": "a", "actual_label": 1.0}', "got number"),
        (b'{"text": "a", "actual_label": false}', "got boolean"),
        (b'{"text": "a", "actual_label": NaN}', "got number"),
    ],
)
def test_bad_bodies(raw, words):
    with pytest.raises(BadInput, match=words.replace("[", r"\[")):
        parse_predict_body(raw)


def test_scoring_payloads_are_forwarded_without_the_routers_fields():
    raw = b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
    req = parse_predict_body(raw)
    assert (req.text, req.payload, req.rows, req.truth) == (None, raw, 2, None)  # byte for byte
    req = parse_predict_body(b'{"instances": [[1], [2]], "actual_value": [1, 2.5], "user_id": 7, "params": {"k": 1}}')
    assert json.loads(req.payload) == {"instances": [[1], [2]], "params": {"k": 1}}
    assert (req.values, req.labels, req.user_id) == ((1.0, 2.5), None, "7")
    req = parse_predict_body(b'{"dataframe_records": [{"a": 1}], "actual_label": "spam"}')
    assert (req.labels, req.rows) == (("spam",), 1)
    # A shape only MLflow can count: the labels are checked against the model's answer instead.
    req = parse_predict_body(b'{"inputs": {"a": [1, 2, 3], "b": 1}, "actual_label": [0, 1, 1]}')
    assert (req.rows, req.labels) == (3, (0, 1, 1))


def test_label_outside_classes():
    check_label(1, (0, 1))
    check_label(5, None)  # classes unknown: cannot judge here
    with pytest.raises(BadInput, match=r"classes \[0, 1\], got 2"):
        check_label(2, (0, 1))


@pytest.mark.parametrize("raw,value", [("0", 0), ("100", 100), ("12.5", 12.5), ("007", 7), ("99.999", 99.999)])
def test_percentages(raw, value):
    assert parse_percentage(raw) == value


@pytest.mark.parametrize(
    "raw", ["", "-1", "100.01", "101", "abc", "nan", "inf", "1e2", " 5", "5 ", "+5", "1,5", "5.", ".5", "1000"]
)
def test_bad_percentages(raw):
    with pytest.raises(BadInput, match="0 to 100"):
        parse_percentage(raw)


@given(st.text(max_size=8))
def test_percentage_never_raises_anything_but_badinput(raw):
    try:
        value = parse_percentage(raw)
    except BadInput:
        return
    assert 0 <= value <= 100


def test_switch():
    assert parse_switch("1") is True and parse_switch("0") is False
    for raw in ("", "2", "true", "01"):
        with pytest.raises(BadInput):
            parse_switch(raw)


# JSON Schema patterns are ECMA-262: "\x1d" is not whitespace there (it is for Python's strip()),
# and U+FEFF is. The fuzz test once found the router refusing a text the schema allowed.
@pytest.mark.parametrize(
    "text,blank",
    [
        ("\x1d", False),
        ("\x1c\x1f", False),
        ("\x85", False),
        ("x", False),
        (" a ", False),
        ("\ufeff", True),
        ("\u3000\u00a0", True),
        ("\u2028\v\f", True),
        (" \t\r\n", True),
        ("", True),
    ],
)
def test_blank_is_what_the_schema_says(text, blank):
    import json

    raw = json.dumps({"text": text}).encode()
    if blank:
        with pytest.raises(BadInput, match="must not be empty"):
            parse_predict_body(raw)
    else:
        assert parse_predict_body(raw).text == text


def test_the_published_pattern_and_the_validator_agree_on_every_character():
    import re

    from canary_common.text import is_blank
    from canary_router.api.openapi import NOT_BLANK

    pattern = re.compile(NOT_BLANK)
    # Only escapes that mean the same in Python and ECMA-262 regexes.
    assert re.fullmatch(r"\[\^(\\[tnvfr]|\\u[0-9a-f]{4}|-| )+\]", NOT_BLANK), NOT_BLANK
    disagree = [hex(c) for c in range(0x10000) if (pattern.search(chr(c)) is None) != is_blank(chr(c))]
    assert not disagree
    ecma_whitespace = {
        0x9,
        0xA,
        0xB,
        0xC,
        0xD,
        0x20,
        0xA0,
        0x1680,
        *range(0x2000, 0x200B),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
        0xFEFF,
    }
    assert {c for c in range(0x10000) if is_blank(chr(c))} == ecma_whitespace
