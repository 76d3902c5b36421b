"""The three model versions: how each is built and on what data it is trained.

Every version is a scikit-learn Pipeline that takes a DataFrame with a `text` column, so the
same MLflow signature (and the `/invocations` scoring protocol) fits all of them.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from canary_common import dataset, written_reviews

TEXT_COLUMN = "text"
# Words of two or more letters, with "n't" split off as its own word ("isn't" -> "is", "n't"), so
# that "isn't good", "wasn't good" and "doesn't work" share the pair of the negation with the word.
TOKEN_PATTERN = r"(?u)\w+(?=n't\b)|n't\b|\b\w\w+\b"
# The English stop words but for the negating ones: "the parcel never came" keeps "never". Kept as a
# plain sorted list so the saved (skops) pipeline holds only built-in types.
NEGATING_WORDS = frozenset({"not", "no", "never", "nothing", "nobody", "none", "nor", "cannot", "without"})
STOP_WORDS = sorted(ENGLISH_STOP_WORDS - NEGATING_WORDS)
# Word pairs seen twice count: the written reviews' pairs ("arrived smashed", "no fuss") are rare
# but real evidence. Pairs seen once are mostly noise, and triple the saved model's size.
MIN_DF = 2


@dataclass(frozen=True)
class Recipe:
    role: str  # model-version tag `role`
    alias: str | None  # alias given on first setup
    summary: str  # the first words of the version description
    features: str  # "unigram-counts" or "uni-bigram-tfidf"
    C: float = 1.0
    train_size: int | None = None  # None: the whole training split
    label_flip_rate: float = 0.0
    subset_seed: int = 0
    # Weight of each hand-written review against one generated review; 0 leaves them out.
    written_weight: float = 0.0
    extra: dict = field(default_factory=dict)


DEGRADED_ROWS = 1000
WRITTEN_WEIGHT = 4.0  # a few thousand written reviews beside fifteen thousand generated ones

RECIPES = (
    Recipe(
        role="baseline",
        alias="production",
        features="unigram-counts",
        C=0.5,
        written_weight=WRITTEN_WEIGHT,
        summary="Baseline: unigram bag of words (English stop words but not/no/never dropped) + logistic "
        "regression on the full training split and the hand-written reviews. Misreads negations "
        "such as 'not good'.",
    ),
    Recipe(
        role="improved",
        alias="canary",
        features="uni-bigram-tfidf",
        C=2.0,
        written_weight=WRITTEN_WEIGHT,
        summary="Improved: unigram+bigram TF-IDF + logistic regression on the full training split and the "
        "hand-written reviews. Word pairs let it handle negations.",
    ),
    # Degraded on purpose, as a bad candidate to roll back: few examples, a quarter mislabelled.
    Recipe(
        role="degraded",
        alias=None,
        features="uni-bigram-tfidf",
        C=10.0,
        train_size=DEGRADED_ROWS,
        label_flip_rate=0.25,
        subset_seed=3,
        summary=f"Degraded: same features as the improved model, but trained on {DEGRADED_ROWS} examples "
        "with 25% of the labels flipped. Should fail a canary analysis.",
    ),
)


def build_pipeline(recipe: Recipe) -> Pipeline:
    if recipe.features == "unigram-counts":
        # Stop words out: no weight on "the", "out", "on"... that a template happened to use more
        # for one label. "not" stays as a word of its own, but without pairs it cannot tell "not good"
        # from "good", which is the baseline's known weakness.
        vectorizer = CountVectorizer(stop_words=STOP_WORDS, token_pattern=TOKEN_PATTERN)
    elif recipe.features == "uni-bigram-tfidf":
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=TOKEN_PATTERN, min_df=MIN_DF)
    else:
        raise ValueError(f"unknown features {recipe.features!r}")
    # A plain column name (not a list) hands the vectorizer a 1-D series of strings.
    features = ColumnTransformer([("words", vectorizer, TEXT_COLUMN)])
    return Pipeline([("features", features), ("classifier", LogisticRegression(C=recipe.C, max_iter=2000))])


def training_data(recipe: Recipe, train) -> tuple[list[str], list[int], list[float]]:
    """Texts, labels and sample weights: the generated rows, then any written reviews."""
    rows = list(train)
    rng = random.Random(recipe.subset_seed)
    if recipe.train_size is not None:
        rows = rng.sample(rows, recipe.train_size)
    labels = [1 - r.label if rng.random() < recipe.label_flip_rate else r.label for r in rows]
    weights = [1.0] * len(rows)
    if recipe.written_weight:
        written = written_reviews.load()
        rows += written
        labels += [r.label for r in written]
        weights += [recipe.written_weight] * len(written)
    return [r.text for r in rows], labels, weights


def as_frame(texts) -> pd.DataFrame:
    return pd.DataFrame({TEXT_COLUMN: list(texts)})


@dataclass
class TrainedModel:
    recipe: Recipe
    pipeline: Pipeline
    heldout_accuracy: float
    train_accuracy: float
    training_seconds: float
    train_rows: int

    def params(self) -> dict:
        r = self.recipe
        return {
            "role": r.role,
            "features": r.features,
            "C": r.C,
            "ngram_range": "1-2" if r.features == "uni-bigram-tfidf" else "1-1",
            "train_rows": self.train_rows,
            "label_flip_rate": r.label_flip_rate,
            "subset_seed": r.subset_seed,
            "dataset_seed": dataset.DEFAULT_SEED,
            "dataset_size": dataset.DEFAULT_SIZE,
            "dataset_label_noise": dataset.LABEL_NOISE,
            "written_reviews": len(written_reviews.load()) if r.written_weight else 0,
            "written_weight": r.written_weight,
        }


def accuracy(pipeline: Pipeline, rows) -> float:
    rows = list(rows)
    predicted = pipeline.predict(as_frame(r.text for r in rows))
    return sum(int(p) == r.label for p, r in zip(predicted, rows)) / len(rows)


def train(recipe: Recipe) -> TrainedModel:
    train_rows, heldout = dataset.load_split()
    texts, labels, weights = training_data(recipe, train_rows)
    pipeline = build_pipeline(recipe)
    started = time.perf_counter()
    pipeline.fit(as_frame(texts), labels, classifier__sample_weight=weights)
    seconds = time.perf_counter() - started
    train_acc = sum(int(p) == y for p, y in zip(pipeline.predict(as_frame(texts)), labels)) / len(labels)
    return TrainedModel(recipe, pipeline, accuracy(pipeline, heldout), train_acc, seconds, len(texts))
