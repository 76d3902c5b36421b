"""Log the trained versions to MLflow, register them and give them their aliases and tags."""
from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version as package_version

import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from canary_common.registry import WEIGHT_TAG, RegistryClient
from model_setup.recipes import RECIPES, TrainedModel, as_frame, train

log = logging.getLogger("model_setup")

EXAMPLE_TEXTS = ["The battery is not good.", "Great screen, highly recommend it.",
                 "It wasn't bad at all."]
MODEL_DESCRIPTION = ("Sentiment of short English product reviews (1 positive, 0 negative). Input: a "
                     "DataFrame with a `text` column. Rollout state lives in the aliases "
                     "`production`/`canary` and the `canary.*` tags.")


# What a server needs to load the model. Given explicitly: MLflow's inference also picks up
# whatever else the logging process had imported (pytest, the full mlflow).
SERVING_PACKAGES = ("mlflow-skinny", "scikit-learn", "skops", "pandas", "numpy", "scipy")


def serving_requirements() -> list[str]:
    pins = []
    for name in SERVING_PACKAGES:
        try:
            pins.append(f"{name}=={package_version(name)}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


def log_and_register(client: MlflowClient, model_name: str, trained: TrainedModel) -> str:
    """One run per version: params, held-out accuracy, the model with signature and example."""
    recipe = trained.recipe
    example = as_frame(EXAMPLE_TEXTS)
    signature = infer_signature(example, trained.pipeline.predict(example))
    with mlflow.start_run(run_name=f"{model_name}-{recipe.role}") as run:
        mlflow.set_tag("role", recipe.role)
        mlflow.log_params(trained.params())
        mlflow.log_metrics({"heldout_accuracy": trained.heldout_accuracy,
                            "train_accuracy": trained.train_accuracy,
                            "training_seconds": trained.training_seconds})
        info = mlflow.sklearn.log_model(trained.pipeline, name="model", signature=signature,
                                        input_example=example, registered_model_name=model_name,
                                        pip_requirements=serving_requirements())
    version = str(info.registered_model_version)
    client.update_model_version(model_name, version, description=(
        f"{recipe.summary} Held-out accuracy {trained.heldout_accuracy:.3f} on "
        f"{trained.train_rows} training rows. Run {run.info.run_id}."))
    client.set_model_version_tag(model_name, version, "role", recipe.role)
    client.set_model_version_tag(model_name, version, "heldout_accuracy", f"{trained.heldout_accuracy:.4f}")
    log.info("registered %s version %s (%s): held-out accuracy %.3f, trained in %.2fs",
             model_name, version, recipe.role, trained.heldout_accuracy, trained.training_seconds)
    return version


def versions_by_role(client: MlflowClient, model_name: str) -> tuple[dict[str, str], int]:
    versions = client.search_model_versions(f"name='{model_name}'")
    roles: dict[str, str] = {}
    for v in sorted(versions, key=lambda v: int(v.version)):
        role = (v.tags or {}).get("role")
        if role and role not in roles:
            roles[role] = str(v.version)
    return roles, len(versions)


def ensure_aliases(client: MlflowClient, model_name: str, roles: dict[str, str]) -> None:
    """Give missing aliases their first-setup versions, but never undo the controller's work:
    once the rollout has started (a weight tag exists) a missing canary alias is deliberate."""
    model = client.get_registered_model(model_name)
    aliases = dict(model.aliases or {})
    rollout_started = WEIGHT_TAG in (model.tags or {})
    for recipe in RECIPES:
        if recipe.alias is None or recipe.alias in aliases or recipe.role not in roles:
            continue
        if recipe.alias != "production" and rollout_started:
            log.info("alias %s is missing but the rollout has started; leaving it unset", recipe.alias)
            continue
        client.set_registered_model_alias(model_name, recipe.alias, roles[recipe.role])
        log.info("alias %s -> version %s (%s)", recipe.alias, roles[recipe.role], recipe.role)


def ensure_rollout_state(tracking_uri: str, model_name: str) -> None:
    registry = RegistryClient(tracking_uri, model_name, timeout=10.0)
    state = registry.read_state()
    if WEIGHT_TAG in state.tags:
        log.info("rollout state already set (weight %g%%, phase %s); not touching it", state.weight, state.phase)
        return
    registry.write_state(weight=20, mode="auto", phase="progressing", reason="initial setup")
    log.info("rollout state set: weight 20 percent, mode auto, phase progressing")


def setup(tracking_uri: str, model_name: str, experiment: str) -> dict[str, str]:
    """Idempotent: registers only the versions that are missing, and nothing once 3 exist."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    roles, count = versions_by_role(client, model_name)
    if count >= 3:
        log.info("%s already has %d versions; only checking aliases and tags", model_name, count)
    else:
        mlflow.set_experiment(experiment)
        for recipe in RECIPES:
            if recipe.role in roles:
                log.info("%s already registered as version %s", recipe.role, roles[recipe.role])
                continue
            roles[recipe.role] = log_and_register(client, model_name, train(recipe))
        client.update_registered_model(model_name, description=MODEL_DESCRIPTION)
    ensure_aliases(client, model_name, roles)
    ensure_rollout_state(tracking_uri, model_name)
    return roles
