"""The bundled tabular demos' data: datasets scikit-learn ships (nothing is downloaded), split
into training and held-out rows the same way everywhere.

model-setup trains on the training rows and scores on the held-out ones; loadgen sends the
held-out rows with their labels, so live accuracy matches the figures tagged on the versions.
Standard library, numpy and scikit-learn only (scikit-learn is imported when data is asked for).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 8  # fixed: the split is part of what a version's held-out figures mean
HELDOUT_FRACTION = 0.3


@dataclass(frozen=True)
class TabularDemo:
    name: str  # the registered model's name (MODEL_NAME) and LOADGEN_DATA value
    task: str  # "classification" or "regression"
    loader: str  # the sklearn.datasets function
    about: str  # what a row is and what is predicted


DEMOS = {
    "breast-cancer": TabularDemo(
        "breast-cancer",
        "classification",
        "load_breast_cancer",
        "Breast tumours: 30 measurements of cell nuclei from a digitised image; predicts 0 malignant or 1 benign.",
    ),
    "diabetes": TabularDemo(
        "diabetes",
        "regression",
        "load_diabetes",
        "Diabetes patients: age, sex, BMI, blood pressure and six blood serum measurements (scaled); "
        "predicts disease progression one year after baseline (about 25 to 346).",
    ),
}
NAMES = tuple(DEMOS)


@dataclass(frozen=True)
class TabularSplit:
    demo: TabularDemo
    columns: tuple[str, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    heldout_x: np.ndarray
    heldout_y: np.ndarray

    @property
    def task(self) -> str:
        return self.demo.task


def demo(name: str) -> TabularDemo:
    try:
        return DEMOS[name]
    except KeyError:
        raise KeyError(f"no bundled tabular demo {name!r} (have: {', '.join(NAMES)})") from None


@functools.cache
def split(name: str) -> TabularSplit:
    """Deterministic: a seeded permutation, the first HELDOUT_FRACTION of it held out."""
    spec = demo(name)
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, spec.loader)()
    x = np.asarray(bunch.data, dtype=float)
    y = np.asarray(bunch.target, dtype=int if spec.task == "classification" else float)
    # RandomState, not default_rng: numpy keeps its stream the same across releases.
    order = np.random.RandomState(SPLIT_SEED).permutation(len(x))
    cut = round(len(x) * HELDOUT_FRACTION)
    held, train = order[:cut], order[cut:]
    parts = [x[train], y[train], x[held], y[held]]
    for part in parts:
        part.setflags(write=False)  # cached and shared: nobody may change it
    return TabularSplit(spec, tuple(str(c) for c in bunch.feature_names), *parts)


def held_out_rows(name: str) -> tuple[list[str], list[list[float]], list, str]:
    """(columns, rows, labels or values, task) of the held-out split, as plain JSON-ready lists:
    int class labels for a classifier, float values for a regressor."""
    s = split(name)
    targets = [int(v) for v in s.heldout_y] if s.task == "classification" else [float(v) for v in s.heldout_y]
    return list(s.columns), s.heldout_x.tolist(), targets, s.task
