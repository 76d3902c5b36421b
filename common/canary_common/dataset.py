"""A synthetic, labelled set of short English product reviews (1 = positive, 0 = negative).

Made from templates with a seeded random generator, so every service (model setup, load
generator, tests) sees the same reviews without downloading anything. Stdlib only.

The mix is tuned so that models differ in a way the canary rollout can see:
- plain sentences, which any bag of words gets right;
- negations ("not good", "wasn't bad at all"), which need word pairs;
- mixed reviews whose label follows the majority of their clauses or an explicit verdict;
- sarcastic or lukewarm ones, which no simple model gets right reliably;
- and a few percent of flipped labels, as in real human labelling.
"""
from __future__ import annotations

import functools
import random
from typing import NamedTuple

CLASSES = (0, 1)
DEFAULT_SEED = 7  # chosen so the three model versions land mid-range (see model_setup)
DEFAULT_SIZE = 4000
HELDOUT_SHARE = 0.25
LABEL_NOISE = 0.03


class Review(NamedTuple):
    text: str
    label: int


PRODUCTS = (
    "headset", "laptop", "blender", "coffee maker", "phone case", "keyboard", "monitor",
    "vacuum", "backpack", "treadmill", "smartwatch", "tablet", "charger", "desk lamp",
    "air fryer", "router", "camera", "speaker", "mattress", "water bottle", "jacket", "printer",
    "mouse", "toaster", "kettle", "office chair", "microwave", "drone", "e-reader", "tent",
    "projector", "hair dryer", "rice cooker", "webcam", "suitcase", "fitness tracker",
)
ASPECTS = (
    "battery", "screen", "sound", "build quality", "price", "design", "customer service",
    "delivery", "packaging", "setup", "fit", "material", "performance", "noise level",
    "manual", "charging", "app", "warranty support", "size", "weight", "display",
    "motor", "handle", "lid", "strap", "power button", "cable", "finish",
)
POSITIVE = (
    "great", "excellent", "amazing", "fantastic", "solid", "reliable", "impressive",
    "wonderful", "perfect", "sturdy", "comfortable", "outstanding", "superb", "good",
    "lovely", "brilliant", "fast", "quiet", "responsive", "sleek", "durable", "flawless",
)
NEGATIVE = (
    "terrible", "awful", "poor", "flimsy", "disappointing", "cheap", "useless", "horrible",
    "bad", "mediocre", "unreliable", "noisy", "slow", "faulty", "defective", "frustrating",
    "weak", "shoddy", "overpriced", "clunky", "fragile", "laggy",
)
INTENSIFIERS = ("", "", "", "really ", "very ", "super ", "absolutely ", "quite ", "pretty ",
                "incredibly ", "so ")
OPENERS = (
    "", "", "", "", "Bought this {product} last month. ", "Got this {product} as a gift. ",
    "Update after two weeks: ", "Second one I've owned. ", "Ordered it on sale. ",
    "My wife picked this {product}. ", "Used it daily for a month. ", "Honest review: ",
    "First time buying from this brand. ", "Replaced my old {product} with this. ",
)
POSITIVE_VERDICTS = (
    "Would buy again.", "Highly recommend it.", "Five stars.", "Love it.",
    "Worth every penny.", "Very happy with it.", "Exceeded my expectations.",
    "Best purchase this year.", "My kids love it too.", "A keeper.", "Glad I bought it.",
)
NEGATIVE_VERDICTS = (
    "Returning it.", "Waste of money.", "One star.", "Avoid.", "Regret buying it.",
    "Sent it back.", "Save your money.", "Never again.", "Very disappointed.",
    "It broke within a week.", "Asked for a refund.",
)
POSITIVE_CLAUSES = (
    "works like a charm", "does exactly what it promises", "arrived early",
    "feels premium", "was easy to set up", "lasts all day", "keeps getting better",
    "holds up well", "made my mornings easier", "beats my old one easily",
)
NEGATIVE_CLAUSES = (
    "stopped working after a week", "keeps disconnecting", "arrived scratched",
    "feels like a toy", "was a pain to set up", "dies before lunch", "overheats constantly",
    "fell apart quickly", "made a weird rattling noise", "is worse than my old one",
)
# Negated phrases: the surface words point one way, the meaning the other. People negate a
# few common words far more often than rare ones, which is also what makes word pairs learnable.
NEGATABLE_POSITIVE = ("good", "great", "impressive", "reliable", "comfortable", "sturdy", "fast",
                      "perfect")
NEGATABLE_NEGATIVE = ("bad", "terrible", "awful", "cheap", "noisy", "slow", "flimsy", "disappointing")
NEGATED_POSITIVE = (  # mean negative
    "is not {npos}", "is not {npos}", "was not {npos}", "isn't {npos}", "wasn't {npos}",
    "is not {npos} at all", "is not exactly {npos}", "is far from {npos}", "is not {int}{npos}",
)
NEGATED_NEGATIVE = (  # mean positive
    "is not {nneg}", "is not {nneg}", "was not {nneg}", "isn't {nneg}", "wasn't {nneg} at all",
    "is not {nneg} at all", "is never {nneg}", "is not {nneg} in the slightest", "isn't {int}{nneg}",
)
NEGATED_STATEMENTS = {
    0: ("I can't recommend this {product}.", "I would not buy this {product} again.",
        "Not worth the money.", "This {product} does not work well.", "I don't love it.",
        "Nothing about this {product} is good.", "I'm not happy with this {product}.",
        "It doesn't live up to the hype.", "Not impressed with this {product}.",
        "Wouldn't recommend it to anyone."),
    1: ("I have no complaints about this {product}.", "Never had a problem with it.",
        "This {product} doesn't disappoint.", "Not a single issue so far.",
        "I can't complain about this {product}.", "No regrets buying this {product}.",
        "Never had any trouble with the {aspect}.", "Nothing bad to say about it.",
        "I'm not disappointed at all.", "Couldn't be happier with this {product}."),
}
SARCASTIC = (  # all negative, with upbeat words
    "Oh great, the {product} {negclause}.", "Wow, what a {pos} {product}, it {negclause}.",
    "Just perfect, another {product} that {negclause}.",
    "Love how the {aspect} {negclause}. Brilliant engineering.",
    "Fantastic, five stars for a {product} that {negclause}... not.",
    "Amazing how fast the {aspect} gave up. Great job.",
)
LUKEWARM = (  # genuinely ambiguous: the label is a coin toss
    "It's okay, nothing special.", "The {product} is fine I guess.", "It does the job, mostly.",
    "Average {product}, neither good nor bad.", "Meh. The {aspect} is acceptable.",
    "Hard to say yet, ask me in a month.", "It is what it is.",
)


def _maybe_cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(rng: random.Random, template: str, **fixed) -> str:
    values = {
        "product": rng.choice(PRODUCTS), "aspect": rng.choice(ASPECTS),
        "pos": rng.choice(POSITIVE), "neg": rng.choice(NEGATIVE), "int": rng.choice(INTENSIFIERS),
        "npos": rng.choice(NEGATABLE_POSITIVE), "nneg": rng.choice(NEGATABLE_NEGATIVE),
        "negclause": rng.choice(NEGATIVE_CLAUSES),
    }
    values.update(fixed)
    return template.format(**values)


def _clause(rng: random.Random, polarity: int, product: str) -> str:
    """One plain sentence of the given polarity about the product."""
    adj = rng.choice(POSITIVE if polarity else NEGATIVE)
    intens = rng.choice(INTENSIFIERS)
    aspect = rng.choice(ASPECTS)
    forms = (
        f"the {aspect} is {intens}{adj}",
        f"{intens}{adj} {aspect}",
        f"the {aspect} {rng.choice(POSITIVE_CLAUSES if polarity else NEGATIVE_CLAUSES)}",
        f"this {product} is {intens}{adj}",
        f"{adj} {product} overall",
        f"it {rng.choice(POSITIVE_CLAUSES if polarity else NEGATIVE_CLAUSES)}",
    )
    return rng.choice(forms)


def _negated_clause(rng: random.Random, polarity: int) -> str:
    """A clause whose meaning is `polarity` but whose sentiment word says the opposite."""
    aspect = rng.choice(ASPECTS)
    pattern = rng.choice(NEGATED_NEGATIVE if polarity else NEGATED_POSITIVE)
    return f"the {aspect} " + _fill(rng, pattern)


def _plain(rng: random.Random, product: str) -> Review:
    label = rng.randint(0, 1)
    clauses = [_clause(rng, label, product) for _ in range(rng.randint(1, 2))]
    text = ". ".join(_maybe_cap(c) for c in clauses) + "."
    if rng.random() < 0.5:
        text += " " + rng.choice(POSITIVE_VERDICTS if label else NEGATIVE_VERDICTS)
    return Review(text, label)


def _negation(rng: random.Random, product: str) -> Review:
    label = rng.randint(0, 1)
    if rng.random() < 0.3:
        text = _fill(rng, rng.choice(NEGATED_STATEMENTS[label]), product=product)
    else:
        text = _maybe_cap(_negated_clause(rng, label)) + "."
        if rng.random() < 0.3:  # a second, plain clause agreeing with the label
            text += " " + _maybe_cap(_clause(rng, label, product)) + "."
    return Review(text, label)


def _mixed(rng: random.Random, product: str) -> Review:
    """Clauses of both polarities; the majority, or a stated verdict, decides the label."""
    if rng.random() < 0.4:
        label = rng.randint(0, 1)
        majority, minority = [label] * 2, [1 - label]
        parts = majority + minority
        rng.shuffle(parts)
        clauses = [_clause(rng, p, product) for p in parts]
        text = _maybe_cap(clauses[0]) + ", " + clauses[1] + ", but " + clauses[2] + "."
    else:
        label = rng.randint(0, 1)
        first, second = _clause(rng, 1 - label, product), _clause(rng, label, product)
        verdict = rng.choice(POSITIVE_VERDICTS if label else NEGATIVE_VERDICTS)
        text = f"{_maybe_cap(first)} but {second}. {verdict}"
    return Review(text, label)


def _sarcastic(rng: random.Random, product: str) -> Review:
    return Review(_fill(rng, rng.choice(SARCASTIC), product=product), 0)


def _lukewarm(rng: random.Random, product: str) -> Review:
    return Review(_fill(rng, rng.choice(LUKEWARM), product=product), rng.randint(0, 1))


# Share of each kind of review; the negations are what separate a bag of words from bigrams.
KINDS = ((_plain, 0.53), (_negation, 0.26), (_mixed, 0.15), (_sarcastic, 0.04), (_lukewarm, 0.02))


def generate(n: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED, noise: float = LABEL_NOISE) -> list[Review]:
    """`n` distinct reviews; the same arguments give the same list."""
    if n < 1:
        raise ValueError("n must be positive")
    rng = random.Random(seed)
    makers = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    seen: set[str] = set()
    reviews: list[Review] = []
    while len(reviews) < n:
        maker = rng.choices(makers, weights)[0]
        product = rng.choice(PRODUCTS)
        review = maker(rng, product)
        opener = rng.choice(OPENERS)
        text = _fill(rng, opener, product=product) + review.text if opener else review.text
        if text in seen:
            continue
        seen.add(text)
        label = review.label
        if rng.random() < noise:
            label = 1 - label
        reviews.append(Review(text, label))
    return reviews


@functools.lru_cache(maxsize=1)
def load_split() -> tuple[tuple[Review, ...], tuple[Review, ...]]:
    """The fixed (train, heldout) split every service uses; disjoint by text."""
    reviews = generate()
    cut = int(len(reviews) * (1 - HELDOUT_SHARE))
    return tuple(reviews[:cut]), tuple(reviews[cut:])
