"""Log the trained versions to MLflow, register them and give them their aliases and tags;
or, for a model the user registered themselves, check it is there and leave it alone."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import mlflow.sklearn
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

import mlflow
from canary_common.registry import RegistryClient, StateConflict, has_rollout_state
from model_setup import demos
from model_setup.demos import Candidate, Demo

log = logging.getLogger("model_setup")


class UnknownModel(LookupError):
    """MODEL_NAME is neither a bundled demo nor a registered model with a production alias."""


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


def log_and_register(client: MlflowClient, model_name: str, trained: Candidate) -> str:
    """One run per version: params, held-out figures, the model with signature and example."""
    example = trained.example
    signature = infer_signature(example, trained.model.predict(example))
    with mlflow.start_run(run_name=f"{model_name}-{trained.role}") as run:
        mlflow.set_tag("role", trained.role)
        mlflow.log_params(trained.params)
        mlflow.log_metrics(trained.metrics)
        info = mlflow.sklearn.log_model(
            trained.model,
            name="model",
            signature=signature,
            input_example=example,
            registered_model_name=model_name,
            pip_requirements=serving_requirements(),
        )
    version = str(info.registered_model_version)
    client.update_model_version(model_name, version, description=f"{trained.description} Run {run.info.run_id}.")
    client.set_model_version_tag(model_name, version, "role", trained.role)
    for key, value in trained.tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    figures = ", ".join(f"{k} {v:.3f}" for k, v in trained.metrics.items() if k.startswith("heldout_"))
    log.info(
        "registered %s version %s (%s): %s, trained in %.2fs",
        model_name,
        version,
        trained.role,
        figures,
        trained.metrics.get("training_seconds", 0.0),
    )
    return version


def versions_by_role(client: MlflowClient, model_name: str) -> tuple[dict[str, str], int]:
    versions = client.search_model_versions(f"name='{model_name}'")
    roles: dict[str, str] = {}
    for v in sorted(versions, key=lambda v: int(v.version)):
        role = (v.tags or {}).get("role")
        if role and role not in roles:
            roles[role] = str(v.version)
    return roles, len(versions)


def ensure_aliases(client: MlflowClient, model_name: str, demo: Demo, roles: dict[str, str]) -> None:
    """Give missing aliases their first-setup versions, but never undo the controller's work:
    once the rollout has started (a weight tag exists) a missing canary alias is deliberate."""
    model = client.get_registered_model(model_name)
    aliases = dict(model.aliases or {})
    rollout_started = has_rollout_state(dict(model.tags or {}))
    for role, alias in demo.roles:
        if alias is None or alias in aliases or role not in roles:
            continue
        if alias != "production" and rollout_started:
            log.info("alias %s is missing but the rollout has started; leaving it unset", alias)
            continue
        client.set_registered_model_alias(model_name, alias, roles[role])
        log.info("alias %s -> version %s (%s)", alias, roles[role], role)


def ensure_rollout_state(tracking_uri: str, model_name: str) -> None:
    registry = RegistryClient(tracking_uri, model_name, timeout=10.0)
    state = registry.read_state()
    if has_rollout_state(state.tags):
        log.info("rollout state already set (weight %g%%, phase %s); not touching it", state.weight, state.phase)
        return
    # Seeded once, before the controller (its one writer afterwards) starts; never over a state
    # that appeared meanwhile.
    try:
        registry.write_state(weight=20, mode="auto", phase="progressing", reason="initial setup", expected_generation=0)
    except StateConflict:
        log.info("rollout state appeared meanwhile; not touching it")
        return
    log.info("rollout state set: weight 20 percent, mode auto, phase progressing")


def registered_aliases(client: MlflowClient, model_name: str) -> dict[str, str] | None:
    """The registered model's aliases, None when there is no model of that name."""
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return {alias: str(v) for alias, v in (model.aliases or {}).items()}


def unknown_model_message(tracking_uri: str, model_name: str, aliases: dict[str, str] | None) -> str:
    found = (
        "no registered model of that name"
        if aliases is None
        else f"a registered model of that name but no 'production' alias (aliases: {aliases or 'none'})"
    )
    return (
        f"MODEL_NAME={model_name!r} is not a bundled demo ({', '.join(demos.BUNDLED)}), and the registry "
        f"at {tracking_uri} has {found}. Pick a bundled demo, or roll out your own model: register it "
        f"there (e.g. mlflow.sklearn.log_model(model, name='model', registered_model_name={model_name!r}, "
        f"signature=..., input_example=...)), point the alias 'production' at the version serving now "
        f"(MlflowClient().set_registered_model_alias({model_name!r}, 'production', '1')) and 'canary' at "
        f"the candidate, or deploy it later with `canaryctl deploy <version>`."
    )


def use_registered_model(model_name: str, aliases: dict[str, str]) -> dict[str, str]:
    """The user's own model: nothing is trained, no alias or tag is touched."""
    log.info(
        "using the registered model %s as it is (production -> version %s, canary -> %s): nothing "
        "trained, no alias or tag changed",
        model_name,
        aliases["production"],
        f"version {aliases['canary']}"
        if "canary" in aliases
        else "none; `canaryctl deploy <version>` starts a rollout",
    )
    return {alias: aliases[alias] for alias in ("production", "canary") if alias in aliases}


def setup(tracking_uri: str, model_name: str, experiment: str) -> dict[str, str]:
    """A bundled demo: registers only the versions that are missing, nothing once all exist
    (idempotent). Any other name, or a bundled name the user has registered a model of their own
    under: checks the production alias is there and changes nothing. Returns role or alias ->
    version; raises UnknownModel when there is nothing to roll out."""
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    demo = demos.get(model_name)
    aliases = registered_aliases(client, model_name)
    roles, count = versions_by_role(client, model_name)
    demo_roles = [role for role, _ in demo.roles] if demo is not None else []
    if aliases is not None and "production" in aliases and not set(roles) & set(demo_roles):
        return use_registered_model(model_name, aliases)  # not one of ours, even under a demo's name
    if demo is None:
        raise UnknownModel(unknown_model_message(tracking_uri, model_name, aliases))
    if count >= len(demo.roles):
        log.info("%s already has %d versions; only checking aliases and tags", model_name, count)
    else:
        mlflow.set_experiment(experiment)
        for role in demo_roles:
            if role in roles:
                log.info("%s already registered as version %s", role, roles[role])
                continue
            roles[role] = log_and_register(client, model_name, demo.train(role))
        client.update_registered_model(model_name, description=demo.description)
    ensure_aliases(client, model_name, demo, roles)
    ensure_rollout_state(tracking_uri, model_name)
    return roles
