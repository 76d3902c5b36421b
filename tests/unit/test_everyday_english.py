"""The served versions read plain reviews people type, not only the generator's templates.

Three hand-written sets, none made from the generator. everyday_reviews.jsonl and
everyday_reviews_dev.jsonl were used while tuning it; everyday_reviews_final.jsonl was written
before the last round of changes and scored once at its end, so it is the honest figure.

Issue 8 asks for 90 % on unseen everyday reviews; the served versions do not reach it yet (72 %
and 76 % on the final set; 90-92 % on the tuning sets). The floors below are what they do reach,
so a change that makes them worse fails here; the gap to 90 % is open work, reported in the issue.
"""
import json
from pathlib import Path

import pytest

from canary_common.dataset import Review
from model_setup import recipes

DATA = Path(__file__).resolve().parent.parent / "data"
SERVED = ("baseline", "improved")  # the production and canary aliases on first setup
FLOOR_UNSEEN = {"baseline": 0.70, "improved": 0.73}  # measured 0.724 and 0.755; the target is 0.90
SETS = ("everyday_reviews_final.jsonl", "everyday_reviews.jsonl", "everyday_reviews_dev.jsonl")


def load(name: str) -> list[Review]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [Review(**json.loads(line)) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def trained():
    return {r.role: recipes.train(r) for r in recipes.RECIPES if r.role in SERVED}


def test_sets_are_sizeable_balanced_and_disjoint():
    final, main, dev = (load(name) for name in SETS)
    assert len(final) >= 150 and len(main) >= 120 and len(dev) >= 40
    for rows in (final, main, dev):
        assert {r.label for r in rows} == {0, 1}
        assert 0.4 < sum(r.label for r in rows) / len(rows) < 0.6
    texts = [{r.text for r in rows} for rows in (final, main, dev)]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]


@pytest.mark.parametrize("role", SERVED)
def test_served_versions_get_everyday_reviews_right(trained, role):
    model = trained[role]
    scores = {name: recipes.accuracy(model.pipeline, load(name)) for name in SETS}
    figures = ", ".join(f"{name.removesuffix('.jsonl')} {score:.3f}" for name, score in scores.items())
    print(f"{role}: {figures}, held-out {model.heldout_accuracy:.3f}")
    assert scores["everyday_reviews_final.jsonl"] >= FLOOR_UNSEEN[role], scores
    assert scores["everyday_reviews.jsonl"] >= 0.88 and scores["everyday_reviews_dev.jsonl"] >= 0.78, scores
