"""Signed request ids and the labelled-id store."""

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary_router.labels.dedupe import LabelledSet, StoreFull
from canary_router.labels.ids import IdError, IdSigner


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_round_trip():
    signer = IdSigner("s3cret")
    rid = signer.issue("canary", "2", 1, "")
    got = signer.verify(rid)
    assert (got.arm, got.version, got.prediction, got.flags) == ("canary", "2", 1, "")
    assert len(rid) <= 128  # fits the usual X-Request-ID limits
    assert signer.issue("canary", "2", 1) != rid  # a nonce per id


def test_another_secret_or_a_changed_payload_is_forged():
    rid = IdSigner("a").issue("production", "1", 0)
    with pytest.raises(IdError) as exc:
        IdSigner("b").verify(rid)
    assert exc.value.status == 403
    body, mac = rid.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[1] = "c"  # claim the canary served it
    tampered = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode() + "." + mac
    with pytest.raises(IdError) as exc:
        IdSigner("a").verify(tampered)
    assert exc.value.status == 403


@given(st.one_of(st.text(max_size=200), st.integers(), st.none(), st.lists(st.integers())))
def test_garbage_is_400_or_403_never_anything_else(value):
    with pytest.raises(IdError) as exc:
        IdSigner("k").verify(value)
    assert exc.value.status in (400, 403)


def test_expiry():
    clock = Clock()
    signer = IdSigner("k", ttl_s=100, clock=clock)
    rid = signer.issue("canary", "2", 1)
    clock.now += 99
    signer.verify(rid)
    clock.now += 2
    with pytest.raises(IdError) as exc:
        signer.verify(rid)
    assert exc.value.status == 410


@pytest.mark.parametrize("directory", [None, "tmp"])
def test_labelled_set_dedupes_and_survives_a_new_instance(directory, tmp_path):
    d = str(tmp_path) if directory else None
    clock = Clock()
    store = LabelledSet(d, max_entries=3, clock=clock)
    assert store.add("a", clock.now + 10) is True
    assert store.add("a", clock.now + 10) is False
    if d:  # a restarted replica reads the same file
        assert LabelledSet(d, clock=clock).add("a", clock.now + 10) is False
    store.add("b", clock.now + 10)
    store.add("c", clock.now + 100)
    with pytest.raises(StoreFull):
        store.add("d", clock.now + 10)
    clock.now += 11  # a and b expired: room again
    assert store.add("d", clock.now + 10) is True
