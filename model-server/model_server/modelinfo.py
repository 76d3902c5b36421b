"""What a loaded pyfunc model takes and answers: its signature, its task and its class labels.

The model may be an `mlflow.pyfunc.PyFuncModel` of any flavour or, in tests, any object with a
`predict` method (no signature then: inputs are passed through unchecked).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from canary_common.contracts import CLASSES_TAG, TASK_TAG  # model-version tags

log = logging.getLogger("model_server.modelinfo")


TASKS = ("classification", "regression")
MAX_CLASSES = 1000  # more distinct "classes" than this is not a classifier we can flip between


def metadata(model):
    """The MLmodel metadata (mlflow.models.Model) of a pyfunc model, None for a stand-in."""
    try:
        return getattr(model, "metadata", None)
    except Exception:  # PyFuncModel.metadata raises when the model has none
        return None


def input_schema(model):
    meta = metadata(model)
    return meta.get_input_schema() if meta is not None else None


def output_schema(model):
    meta = metadata(model)
    return meta.get_output_schema() if meta is not None else None


def params_schema(model):
    meta = metadata(model)
    return meta.get_params_schema() if meta is not None else None


def from_type_hints(model) -> bool:
    """True when the signature comes from the PythonModel's type hints: MLflow then takes the
    `inputs` value as is and validates it inside predict."""
    meta = metadata(model)
    check = getattr(meta, "_is_signature_from_type_hint", None)
    return bool(check()) if check else False


def loader_module(model) -> str | None:
    try:
        return getattr(model, "loader_module", None)
    except Exception:
        return None


def text_input(model):
    """How to hand a list of texts to a model with one (required) string input.

    Returns ("frame", column) for a DataFrame with that column, ("list", None) for a plain list
    (an unnamed string input), or None when the model's input is not a single string.
    """
    from mlflow.types import DataType

    schema = input_schema(model)
    if schema is None:
        return ("frame", "text")  # no signature: the sentiment model's column, as always
    if schema.is_tensor_spec():
        return None
    required = [spec for spec in schema.inputs if spec.required]
    if len(required) != 1 or required[0].type != DataType.string:
        return None
    name = required[0].name
    if name is None or from_type_hints(model):
        return ("list", None)
    return ("frame", name)


def describe_inputs(model, limit: int = 12) -> str:
    """The model's inputs in a few words, for error messages."""
    schema = input_schema(model)
    if schema is None:
        return "no signature"
    specs = [repr(spec) for spec in schema.inputs]
    more = f", ... ({len(specs)} inputs in all)" if len(specs) > limit else ""
    return "[" + ", ".join(specs[:limit]) + more + "]"


def signature_summary(model) -> dict | None:
    """The signature as JSON for /ready, None without one."""
    meta = metadata(model)
    if meta is None or getattr(meta, "signature", None) is None:
        return None
    inputs, outputs, params = input_schema(model), output_schema(model), params_schema(model)
    return {
        "inputs": inputs.to_dict() if inputs is not None else None,
        "outputs": outputs.to_dict() if outputs is not None else None,
        "params": params.to_dict() if params is not None else None,
        "from_type_hints": from_type_hints(model),
    }


# -- task and classes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskInfo:
    task: str  # "classification" or "regression"
    classes: tuple | None  # class labels (JSON-safe), None when not known or for regression
    source: str  # where the task came from: "tags", "estimator", "signature" or "default"


def _sklearn_kind(estimator) -> str | None:
    try:
        from sklearn.base import is_classifier, is_regressor
    except ImportError:
        return None
    try:
        if is_classifier(estimator):
            return "classification"
        if is_regressor(estimator):
            return "regression"
    except Exception:  # an object that merely looks like an estimator
        return None
    return None


def _looks_like_estimator(obj) -> bool:
    if obj is None or isinstance(obj, (str, bytes, int, float, dict, list, tuple)):
        return False
    if not (hasattr(obj, "predict") and hasattr(obj, "fit")):
        return False
    return hasattr(obj, "classes_") or _sklearn_kind(obj) is not None


def find_estimator(model):
    """The scikit-learn-like estimator inside a pyfunc model, if there is one: the raw model of
    a flavour (`get_raw_model`, e.g. sklearn), else a custom PythonModel (unwrap_python_model)
    that is one or keeps one in an attribute (one level deep)."""
    candidates = []
    for getter in ("get_raw_model", "unwrap_python_model"):
        fn = getattr(model, getter, None)
        if fn is None:
            continue
        try:
            candidates.append(fn())
        except Exception:
            continue
    if not candidates and not hasattr(model, "metadata"):
        candidates.append(model)  # a stand-in object
    for obj in candidates:
        if _looks_like_estimator(obj):
            return obj
    for obj in candidates:
        try:
            attributes = list(vars(obj).values())
        except TypeError:
            continue
        for value in attributes:
            if _looks_like_estimator(value):
                return value
    return None


def _labels(values) -> tuple | None:
    from model_server.jsonsafe import to_jsonable

    try:
        labels = to_jsonable(list(values))
    except TypeError:
        return None
    if not labels or len(labels) > MAX_CLASSES:
        return None
    if not all(isinstance(c, (str, int, float, bool)) and not isinstance(c, list) for c in labels):
        return None  # multi-output classifiers have a list of arrays: no single label set
    return tuple(labels)


def _task_from_output_schema(schema) -> str | None:
    """One output column or tensor: integers, strings and booleans are labels, floats values."""
    if schema is None or len(schema.inputs) != 1:
        return None
    import numpy as np
    from mlflow.types import DataType

    spec = schema.inputs[0]
    if schema.is_tensor_spec():
        kind = np.dtype(spec.type).kind
        return {
            "i": "classification",
            "u": "classification",
            "b": "classification",
            "U": "classification",
            "S": "classification",
            "O": "classification",
            "f": "regression",
        }.get(kind)
    return {
        DataType.long: "classification",
        DataType.integer: "classification",
        DataType.string: "classification",
        DataType.boolean: "classification",
        DataType.double: "regression",
        DataType.float: "regression",
    }.get(spec.type)


def _declared(tags: dict, version: str):
    task = (tags.get(TASK_TAG) or "").strip().lower() or None
    if task is not None and task not in TASKS:
        log.warning("version %s: ignoring tag %s=%r (not one of %s)", version, TASK_TAG, tags[TASK_TAG], TASKS)
        task = None
    classes = None
    raw = tags.get(CLASSES_TAG)
    if raw:
        try:
            parsed = json.loads(raw)
            if not isinstance(parsed, list):
                raise ValueError("not a list")
            classes = _labels(parsed)
            if classes is None:
                raise ValueError("not a list of labels")
        except ValueError as exc:
            log.warning(
                "version %s: ignoring tag %s=%r (%s; want a JSON list such as [0, 1])",
                version,
                CLASSES_TAG,
                raw[:200],
                exc,
            )
    return task, classes


def infer_task(model, tags: dict | None = None, version: str = "?") -> TaskInfo:
    """Classification or regression, and the class labels, in this order of trust:
    1. the model-version tags `canary.task` and `canary.classes` (what the user declared);
    2. the estimator inside the model: sklearn's is_classifier/is_regressor and `classes_`;
    3. the output signature: one integer/string/boolean column is a label, one float a value;
    4. otherwise classification with unknown classes."""
    tag_task, tag_classes = _declared(tags or {}, version)
    estimator = find_estimator(model)
    est_task = _sklearn_kind(estimator) if estimator is not None else None
    raw_classes = getattr(estimator, "classes_", None) if estimator is not None else None
    est_classes = _labels(raw_classes) if raw_classes is not None else None
    if est_task is None and est_classes is not None:
        est_task = "classification"
    schema_task = _task_from_output_schema(output_schema(model))
    if tag_task:
        task, source = tag_task, "tags"
    elif tag_classes:
        task, source = "classification", "tags"
    elif est_task:
        task, source = est_task, "estimator"
    elif schema_task:
        task, source = schema_task, "signature"
    else:
        task, source = "classification", "default"
    classes = None
    if task == "classification":
        classes = tag_classes or est_classes
    return TaskInfo(task, classes, source)
