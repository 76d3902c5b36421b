"""Bring-your-own models for the model-server tests: logged the ways users log them.

- a breast-cancer classifier (scikit-learn, MLflow's default skops format, signature + example);
- a diabetes regressor (scikit-learn, cloudpickle format);
- a custom `PythonModel` (pickled by value, as from a notebook) with a string input, string
  labels and a params schema;
- a tensor model (custom PythonModel with a TensorSpec input);
- models whose load fails: a class from a module the server does not have, a corrupted
  artifact, a skops type that is not trusted.

Every function takes an MLflow tracking URI: a file store in a tmp dir for unit tests, the real
server (support.procs.start_mlflow) for integration tests.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import requests
from sklearn.base import BaseEstimator, TransformerMixin

# What the model server's image installs: no requirement inference (slow, and it would list the
# test process's packages).
REQUIREMENTS = ["mlflow-skinny", "scikit-learn", "skops", "pandas", "numpy", "cloudpickle"]

POSITIVE = ("good", "great", "excellent", "love", "recommend")
NEGATIVE = ("bad", "poor", "broken", "awful", "returning")


FILE_STORE_ENV = {"MLFLOW_ALLOW_FILE_STORE": "true"}  # MLflow 3 refuses a file store unless told


class mlflow_globals_restored:
    """A context: MLflow's global tracking URI and experiment (which it also exports to this
    process's environment, MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_ID, so to every later
    child process) and the given environment variables are put back as they were on exit."""

    def __init__(self, env: dict | None = None):
        self.env = env or {}

    def __enter__(self):
        names = {"MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", *self.env}
        self.saved = {name: os.environ.get(name) for name in names}
        os.environ.update(self.env)
        return self

    def __exit__(self, *exc):
        import mlflow.tracking.fluent

        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.tracking.fluent._active_experiment_id = None  # set_experiment's, also in the env
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def file_store_uri(directory) -> str:
    return Path(directory).resolve().as_uri()


# -- data --------------------------------------------------------------------------------------
def cancer_data() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def diabetes_data() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


# -- custom models ------------------------------------------------------------------------------
class KeywordSentiment(mlflow.pyfunc.PythonModel):
    """ "positive" or "negative" by counting keywords; the `threshold` param moves the line."""

    def predict(self, context, model_input, params=None):
        threshold = float((params or {}).get("threshold", 0.0))
        texts = model_input["review"] if isinstance(model_input, pd.DataFrame) else model_input
        labels = []
        for text in texts:
            words = re.findall(r"[a-z']+", str(text).lower())
            score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
            labels.append("positive" if score > threshold else "negative")
        return labels


class ImageMean(mlflow.pyfunc.PythonModel):
    """Mean brightness of each (H, W) "image" in a float32 tensor: one value per image."""

    def predict(self, context, model_input, params=None):
        return np.asarray(model_input, dtype="float32").mean(axis=(1, 2))


class Shouter(mlflow.pyfunc.PythonModel):
    """A type-hinted PythonModel: MLflow derives the signature (list of strings) from the hints."""

    def predict(self, model_input: list[str], params=None) -> list[str]:
        return [text.upper() for text in model_input]


class ClipTransformer(BaseEstimator, TransformerMixin):
    """A custom scikit-learn step: skops stores it only if its type is declared trusted."""

    def __init__(self, low=-3.0, high=3.0):
        self.low = low
        self.high = high

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), self.low, self.high)


# -- logging ------------------------------------------------------------------------------------
@dataclass
class Logged:
    name: str
    version: str
    run_id: str
    artifact_path: str  # the run-relative artifact folder


def _register(info, name: str) -> Logged:
    return Logged(
        name,
        str(info.registered_model_version),
        info.run_id,
        info.artifact_path if hasattr(info, "artifact_path") else "model",
    )


def _start(tracking_uri: str, experiment: str = "byo-models"):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    return mlflow.start_run()


def log_cancer_classifier(tracking_uri: str, name: str, **log_kwargs) -> Logged:
    """LogisticRegression on standardised breast-cancer features, MLflow's default format (skops)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer_data()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    with _start(tracking_uri):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            input_example=X.head(3),
            registered_model_name=name,
            pip_requirements=REQUIREMENTS,
            **log_kwargs,
        )
    return _register(info, name)


def log_diabetes_regressor(tracking_uri: str, name: str) -> Logged:
    """Ridge regression on the diabetes features, in the cloudpickle format."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import Ridge

    X, y = diabetes_data()
    model = Ridge(alpha=0.1).fit(X, y)
    with _start(tracking_uri):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            input_example=X.head(3),
            registered_model_name=name,
            serialization_format="cloudpickle",
            pip_requirements=REQUIREMENTS,
        )
    return _register(info, name)


def _by_value():
    """Pickle this module's classes by value, as cloudpickle does for a notebook's classes: the
    model server does not have `support.byo_models` on its path."""
    import cloudpickle

    module = sys.modules[__name__]

    class _Ctx:
        def __enter__(self):
            cloudpickle.register_pickle_by_value(module)

        def __exit__(self, *exc):
            cloudpickle.unregister_pickle_by_value(module)

    return _Ctx()


def log_keyword_model(tracking_uri: str, name: str, tags: bool = True) -> Logged:
    """The custom PythonModel: column `review` (string), labels "negative"/"positive", param
    `threshold` (double, default 0). With `tags`, the version declares its task and classes."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    example = pd.DataFrame({"review": ["great kettle, love it", "broken on arrival"]})
    model = KeywordSentiment()
    signature = infer_signature(example, model.predict(None, example), params={"threshold": 0.0})
    with _by_value(), _start(tracking_uri):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            signature=signature,
            input_example=example,
            registered_model_name=name,
            pip_requirements=REQUIREMENTS,
        )
    logged = _register(info, name)
    if tags:
        client = MlflowClient(tracking_uri)
        client.set_model_version_tag(name, logged.version, "canary.task", "classification")
        client.set_model_version_tag(name, logged.version, "canary.classes", '["negative", "positive"]')
    return logged


def log_tensor_model(tracking_uri: str, name: str) -> Logged:
    """A custom PythonModel on float32 tensors of shape (-1, 4, 4), one float per image."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4, 4))]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1,))]),
    )
    with _by_value(), _start(tracking_uri):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ImageMean(),
            signature=signature,
            input_example=np.ones((2, 4, 4), dtype="float32"),
            registered_model_name=name,
            pip_requirements=REQUIREMENTS,
        )
    return _register(info, name)


def log_type_hinted_model(tracking_uri: str, name: str) -> Logged:
    import mlflow.pyfunc

    with _by_value(), _start(tracking_uri):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=Shouter(),
            input_example=["hello"],
            registered_model_name=name,
            pip_requirements=REQUIREMENTS,
        )
    return _register(info, name)


def log_missing_dependency_model(tracking_uri: str, name: str) -> tuple[Logged, str]:
    """A PythonModel whose class lives in a module only this process has (pickled by reference,
    as for any installed package): loading it elsewhere fails with ModuleNotFoundError.
    Returns the version and the module's name."""
    import importlib.util

    import mlflow.pyfunc

    module_name = f"canary_missing_dep_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="byo-missing-"))
    (folder / f"{module_name}.py").write_text(
        textwrap.dedent("""
        import mlflow.pyfunc

        class Doubler(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return [2 * x for x in model_input["x"]]
    """)
    )
    # Imported from its file and registered by name, so cloudpickle saves the class by reference:
    # the model server (which has no such module) must then fail to load it.
    spec = importlib.util.spec_from_file_location(module_name, folder / f"{module_name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        example = pd.DataFrame({"x": [1.0, 2.0]})
        with _start(tracking_uri):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=module.Doubler(),
                input_example=example,
                registered_model_name=name,
                pip_requirements=REQUIREMENTS,
            )
    finally:
        sys.modules.pop(module_name, None)
        shutil.rmtree(folder, ignore_errors=True)
    return _register(info, name), module_name


def log_untrusted_skops_model(tracking_uri: str, name: str) -> Logged:
    """A pipeline with a custom step, trusted when logged; `distrust` later takes that back."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = cancer_data()
    X = X.iloc[:, :5]
    model = make_pipeline(ClipTransformer(), LogisticRegression(max_iter=500)).fit(X, y)
    trusted = [f"{ClipTransformer.__module__}.{ClipTransformer.__qualname__}"]
    with _start(tracking_uri):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            registered_model_name=name,
            pip_requirements=REQUIREMENTS,
            skops_trusted_types=trusted,
        )
    return _register(info, name)


# -- breaking logged artifacts (file stores and the test MLflow server's artifact folder) ----------
def model_dir(tracking_uri: str, logged: Logged) -> Path:
    """The local folder of a logged model's artifacts (a local artifact store only)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    source = client.get_model_version(logged.name, logged.version).source
    if source.startswith("models:/"):  # MLflow 3: the logged model's own artifact location
        model_id = source.split("/", 1)[1].lstrip("/")
        source = client.get_logged_model(model_id).artifact_location
    path = source.removeprefix("file://")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"not a local artifact folder: {source}")
    return Path(path)


def corrupt_artifact(folder: Path) -> None:
    """Overwrite the serialized model with garbage (a broken upload, a truncated file)."""
    for candidate in ("model.skops", "model.pkl", "python_model.pkl"):
        if (folder / candidate).exists():
            (folder / candidate).write_bytes(b"this is not a model\n")
            return
    raise FileNotFoundError(f"no serialized model in {folder}")


def distrust_skops_types(folder: Path) -> None:
    """Remove the trusted-types list from MLmodel: skops then refuses the custom step."""
    mlmodel = folder / "MLmodel"
    text = mlmodel.read_text()
    cleaned = re.sub(r"\n(\s+)skops_trusted_types:\n(\1- .*\n)+", "\n", text)
    cleaned = re.sub(r"\n\s+skops_trusted_types: \[.*\]\n", "\n", cleaned)
    if cleaned == text:
        raise ValueError(f"no skops_trusted_types in {mlmodel}")
    mlmodel.write_text(cleaned)


# -- a registry stand-in for the follower: aliases read with MlflowClient (any store) ------------
class MlflowAliasRegistry:
    def __init__(self, tracking_uri: str, name: str):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.name = name

    def alias_version(self, alias: str) -> str:
        return str(self.client.get_model_version_by_alias(self.name, alias).version)


# -- payloads -----------------------------------------------------------------------------------
def all_formats(frame: pd.DataFrame) -> dict[str, dict]:
    """The same rows in every MLflow scoring format (JSON-ready values)."""
    records = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    columns = list(frame.columns)
    return {
        "dataframe_split": {
            "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}
        },
        "dataframe_split_index": {
            "dataframe_split": {
                "index": list(range(len(records))),
                "columns": columns,
                "data": [[r[c] for c in columns] for r in records],
            }
        },
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs_columns": {"inputs": {c: [r[c] for r in records] for c in columns}},
        "inputs_records": {"inputs": records},
    }


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


# -- waiting for a running model server ------------------------------------------------------------
def wait_serving(
    url: str, version: str, workers: int = 1, timeout: float = 60.0, load_error_version: str | None = None
) -> dict:
    """Until every worker's /ready reports `version` (and, if given, a load error of
    `load_error_version`); returns the last /ready answer."""
    deadline = time.monotonic() + timeout
    good: dict[str, dict] = {}

    def ask(_):
        try:
            resp = requests.get(url + "/ready", timeout=5)
            return resp.headers.get("X-Worker-Pid"), resp.json()
        except (requests.RequestException, ValueError):
            return None, None

    last = None
    with ThreadPoolExecutor(max_workers=8) as pool:
        while time.monotonic() < deadline:
            for pid, ready in pool.map(ask, range(8)):
                if not pid or not ready:
                    continue
                last = ready
                error = ready.get("load_error") or {}
                ok = ready.get("version") == str(version) and (
                    load_error_version is None or error.get("version") == str(load_error_version)
                )
                if ok:
                    good[pid] = ready
                else:
                    good.pop(pid, None)
            if len(good) >= workers:
                return next(iter(good.values()))
            time.sleep(0.2)
    raise TimeoutError(
        f"{url} not serving version {version} (load error {load_error_version}) "
        f"on {workers} worker(s) within {timeout}s; last /ready: {last}"
    )
