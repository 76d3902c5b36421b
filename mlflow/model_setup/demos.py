"""The bundled demos model-setup can train, picked by MODEL_NAME, in one shape for registration.

Each demo has three roles (baseline, improved, degraded); `train(role)` gives a Candidate: the
fitted model and everything registration logs about it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from canary_common import demo_data

BUNDLED = ("sentiment", *demo_data.NAMES)
ALIAS_NOTE = "Rollout state lives in the aliases `production`/`canary` and the `canary.*` tags."


@dataclass
class Candidate:
    """One trained version, ready to log and register."""

    role: str  # model-version tag `role`
    model: object  # a fitted scikit-learn estimator taking a DataFrame
    example: object  # the input example (a DataFrame); the signature is inferred from it
    params: dict
    metrics: dict  # run metrics
    tags: dict = field(default_factory=dict)  # model-version tags besides `role`
    description: str = ""  # the version description, before "Run <id>."


@dataclass(frozen=True)
class Demo:
    name: str
    description: str  # the registered model's description
    roles: tuple[tuple[str, str | None], ...]  # (role, alias given on first setup), in version order
    train: Callable[[str], Candidate]


SENTIMENT_EXAMPLES = ["The battery is not good.", "Great screen, highly recommend it.", "It wasn't bad at all."]


def _sentiment_candidate(role: str) -> Candidate:
    from model_setup import recipes

    recipe = next(r for r in recipes.RECIPES if r.role == role)
    trained = recipes.train(recipe)
    return Candidate(
        role=role,
        model=trained.pipeline,
        example=recipes.as_frame(SENTIMENT_EXAMPLES),
        params=trained.params(),
        metrics={
            "heldout_accuracy": trained.heldout_accuracy,
            "train_accuracy": trained.train_accuracy,
            "training_seconds": trained.training_seconds,
        },
        tags={"heldout_accuracy": f"{trained.heldout_accuracy:.4f}"},
        description=(
            f"{recipe.summary} Held-out accuracy {trained.heldout_accuracy:.3f} on {trained.train_rows} training rows."
        ),
    )


def _sentiment() -> Demo:
    from model_setup import recipes

    return Demo(
        "sentiment",
        "Sentiment of short English product reviews (1 positive, 0 negative). Input: a DataFrame "
        f"with a `text` column. {ALIAS_NOTE}",
        tuple((r.role, r.alias) for r in recipes.RECIPES),
        _sentiment_candidate,
    )


def get(name: str) -> Demo | None:
    """The bundled demo called `name`, None when there is none."""
    if name == "sentiment":
        return _sentiment()
    if name in demo_data.DEMOS:
        from model_setup import tabular

        return tabular.demo(name)
    return None
