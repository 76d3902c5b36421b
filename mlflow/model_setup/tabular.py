"""The tabular demos' versions: a classifier on breast-cancer, a regressor on diabetes.

Every version takes the demo's full set of columns (so the same MLflow signature and payloads fit
all of them) and picks its own features inside the pipeline. The degraded versions are worse by
design, not by an injected fault: they see only features that say little about the target.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from canary_common import demo_data
from canary_common.contracts import CLASSES_TAG, TASK_TAG
from canary_common.regression import bound_index
from model_setup.demos import ALIAS_NOTE, Candidate, Demo

# Regression figures: the share of predictions within this distance of the truth. A bound of
# the router's absolute-error histogram, so the live share is counted exactly.
TOLERANCE = 50.0
if bound_index(TOLERANCE) is None:
    raise ValueError(f"TOLERANCE {TOLERANCE} is not a bound of the router's absolute-error histogram")
WITHIN_KEY = f"heldout_within_{TOLERANCE:g}"
CLASSES = [0, 1]  # breast-cancer: 0 malignant, 1 benign (scikit-learn's coding)


@dataclass(frozen=True)
class TabularRecipe:
    role: str
    alias: str | None  # alias given on first setup
    summary: str  # the first words of the version description
    estimator: str  # "logistic", "ridge" or "linear"
    features: tuple[str, ...] | None = None  # None: every column
    strength: float = 1.0  # C of the logistic regression, alpha of the ridge


RECIPES = {
    "breast-cancer": (
        TabularRecipe(
            "baseline",
            "production",
            "Baseline: standardised logistic regression on the ten 'mean ...' features only.",
            "logistic",
            features=("mean *",),
        ),
        TabularRecipe(
            "improved",
            "canary",
            "Improved: standardised logistic regression on all 30 features (means, standard errors and worst values).",
            "logistic",
        ),
        # Worse on purpose, as a bad candidate to roll back: one weak feature.
        TabularRecipe(
            "degraded",
            None,
            "Degraded: logistic regression on 'mean texture' alone. Should fail a canary analysis.",
            "logistic",
            features=("mean texture",),
        ),
    ),
    "diabetes": (
        TabularRecipe(
            "baseline", "production", "Baseline: linear regression on BMI alone.", "linear", features=("bmi",)
        ),
        TabularRecipe("improved", "canary", "Improved: ridge regression on all ten features.", "ridge", strength=0.1),
        TabularRecipe(
            "degraded",
            None,
            "Degraded: linear regression on age and sex only. Should fail a canary analysis.",
            "linear",
            features=("age", "sex"),
        ),
    ),
}


def features_of(recipe: TabularRecipe, columns) -> list[str]:
    """The recipe's columns; a name ending in * stands for every column starting with the rest."""
    if recipe.features is None:
        return list(columns)
    chosen = []
    for name in recipe.features:
        matched = (
            [c for c in columns if c.startswith(name[:-1])] if name.endswith("*") else [c for c in columns if c == name]
        )
        if not matched:
            raise ValueError(f"recipe {recipe.role}: no column {name!r}")
        chosen += [c for c in matched if c not in chosen]
    return chosen


def build_pipeline(recipe: TabularRecipe, columns) -> Pipeline:
    estimator = {
        "logistic": lambda: LogisticRegression(C=recipe.strength, max_iter=5000),
        "ridge": lambda: Ridge(alpha=recipe.strength),
        "linear": LinearRegression,
    }[recipe.estimator]()
    # The selector drops the other columns, so every version accepts the full row.
    select = ColumnTransformer([("features", "passthrough", features_of(recipe, columns))], remainder="drop")
    return Pipeline([("select", select), ("scale", StandardScaler()), ("model", estimator)])


def frame(split: demo_data.TabularSplit, x) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(x), columns=list(split.columns))


def scores(task: str, predicted, truth, prefix: str) -> dict[str, float]:
    predicted, truth = np.asarray(predicted, dtype=float), np.asarray(truth, dtype=float)
    if task == "classification":
        return {f"{prefix}_accuracy": float(np.mean(predicted == truth))}
    error = np.abs(predicted - truth)
    return {f"{prefix}_mae": float(error.mean()), f"{prefix}_within_{TOLERANCE:g}": float(np.mean(error <= TOLERANCE))}


def describe(task: str, metrics: dict) -> str:
    if task == "classification":
        return f"Held-out accuracy {metrics['heldout_accuracy']:.3f}"
    return f"Held-out MAE {metrics['heldout_mae']:.1f}, {metrics[WITHIN_KEY]:.1%} within {TOLERANCE:g}"


def train(name: str, role: str) -> Candidate:
    split = demo_data.split(name)
    recipe = next(r for r in RECIPES[name] if r.role == role)
    pipeline = build_pipeline(recipe, split.columns)
    train_x = frame(split, split.train_x)
    started = time.perf_counter()
    pipeline.fit(train_x, split.train_y)
    seconds = time.perf_counter() - started
    metrics = {
        **scores(split.task, pipeline.predict(frame(split, split.heldout_x)), split.heldout_y, "heldout"),
        **scores(split.task, pipeline.predict(train_x), split.train_y, "train"),
        "training_seconds": seconds,
    }
    features = features_of(recipe, split.columns)
    tags = {key: f"{metrics[key]:.4f}" for key in metrics if key.startswith("heldout_")}
    tags[TASK_TAG] = split.task
    if split.task == "classification":
        tags[CLASSES_TAG] = json.dumps(CLASSES)
    return Candidate(
        role=role,
        model=pipeline,
        example=train_x.head(3),
        params={
            "role": role,
            "estimator": recipe.estimator,
            "strength": recipe.strength,
            "features": ",".join(features)[:500],
            "n_features": len(features),
            "train_rows": len(train_x),
            "heldout_rows": len(split.heldout_y),
            "split_seed": demo_data.SPLIT_SEED,
            "heldout_fraction": demo_data.HELDOUT_FRACTION,
        },
        metrics=metrics,
        tags=tags,
        description=f"{recipe.summary} {describe(split.task, metrics)} on {len(train_x)} training rows.",
    )


def demo(name: str) -> Demo:
    spec = demo_data.demo(name)
    columns = len(demo_data.split(name).columns)
    return Demo(
        name,
        f"{spec.about} Input: a DataFrame with the dataset's {columns} numeric columns "
        f"(sklearn.datasets.{spec.loader}). {ALIAS_NOTE}",
        tuple((r.role, r.alias) for r in RECIPES[name]),
        lambda role: train(name, role),
    )
