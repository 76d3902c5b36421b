"""Hand-written everyday reviews, a training corpus beside the generator's templates.

The generator's reviews teach the words of its templates; people write about what happened
("the zip broke the second time I used it", "refund was in my account the next morning") in
words no template has. These reviews were written one by one, across shops, food, stays, travel,
apps, services and trades, with no template, and none of them is in the everyday-English test
sets (tests/data), which judge the models on reviews neither source has seen.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from canary_common.dataset import Review

CORPUS_FILE = "written_reviews.jsonl"


@functools.cache
def load() -> tuple[Review, ...]:
    """Every written review, in the file's order."""
    text = resources.files("canary_common").joinpath("data", CORPUS_FILE).read_text(encoding="utf-8")
    rows = (json.loads(line) for line in text.splitlines() if line.strip())
    return tuple(Review(text=row["text"], label=int(row["label"])) for row in rows)
