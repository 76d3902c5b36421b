"""Input checks of the router: each bad input is refused with a message naming the problem."""
import pytest
from hypothesis import given, strategies as st

from canary_router.validation import (BadInput, check_label, parse_percentage, parse_predict_body,
                                      parse_switch)


def test_good_bodies():
    assert parse_predict_body(b'{"text": "great"}').text == "great"
    req = parse_predict_body(b'{"text": "bad", "actual_label": 0, "extra": 1}')
    assert req.actual_label == 0


@pytest.mark.parametrize("raw,words", [
    (b"", "empty"), (b"  ", "empty"), (b"{", "not valid JSON"), (b"\xff", "UTF-8"),
    (b"null", "got null"), (b"[]", "got list"), (b"3", "JSON object"),
    (b"{}", "'text' is missing"), (b'{"text": 1}', "got integer"), (b'{"text": ["a"]}', "got array"),
    (b'{"text": ""}', "must not be empty"), (b'{"text": "\\n\\t"}', "must not be empty"),
    (b'{"text": "a", "actual_label": "1"}', "got string"), (b'{"text": "a", "actual_label": 1.0}', "got number"),
    (b'{"text": "a", "actual_label": false}', "got boolean"), (b'{"text": "a", "actual_label": NaN}', "got number"),
])
def test_bad_bodies(raw, words):
    with pytest.raises(BadInput, match=words.replace("[", r"\[")):
        parse_predict_body(raw)


def test_label_outside_classes():
    check_label(1, (0, 1))
    check_label(5, None)  # classes unknown: cannot judge here
    with pytest.raises(BadInput, match=r"classes \[0, 1\], got 2"):
        check_label(2, (0, 1))


@pytest.mark.parametrize("raw,value", [("0", 0), ("100", 100), ("12.5", 12.5), ("007", 7), ("99.999", 99.999)])
def test_percentages(raw, value):
    assert parse_percentage(raw) == value


@pytest.mark.parametrize("raw", ["", "-1", "100.01", "101", "abc", "nan", "inf", "1e2", " 5", "5 ", "+5", "1,5",
                                 "5.", ".5", "1000"])
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
