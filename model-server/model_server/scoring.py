"""Score one request with MLflow's own parsing and schema enforcement.

`/invocations` bodies are read by `mlflow.pyfunc.scoring_server.infer_and_parse_data` (which
uses `parse_tf_serving_input` for `instances`/`inputs` and `dataframe_from_parsed_json` for the
`dataframe_*` formats), exactly as `mlflow models serve` reads them, and the schema is enforced
by `PyFuncModel.predict` (`mlflow.models.utils._enforce_schema`, `_enforce_params_schema`).
This module only adds what a shared server needs around that: strict payload keys, a row cap,
short error messages that reach the client as 400s, and answers with one JSON-safe prediction
per row.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter

from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server

from canary_common.payload import raw_rows
from model_server import modelinfo
from model_server.jsonsafe import notes_text, to_jsonable
from model_server.payloads import SCORING_KEYS, BadInput, TooLarge

log = logging.getLogger("model_server.scoring")

ERROR_MAX_CHARS = 1000
# MLflow error codes that mean "the input is wrong", not "the server is broken".
CLIENT_ERROR_CODES = ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")


class ModelFailed(RuntimeError):
    """The model raised (or answered nonsense) on input that passed every check: a 500."""


def trim(message: str, limit: int = ERROR_MAX_CHARS) -> str:
    message = " ".join(str(message).split())  # one line: no DataFrame reprs over many lines
    if len(message) <= limit:
        return message
    return message[:limit] + f" ... ({len(message) - limit} more characters)"


# -- the request ------------------------------------------------------------------------------
def scoring_request(body, max_rows: int) -> tuple[str, object, dict | None]:
    """The (format key, its value, params) of an MLflow scoring payload; raises BadInput."""
    if not isinstance(body, dict):
        raise BadInput(f'body must be a JSON object with one of {list(SCORING_KEYS)} (and optionally "params")')
    keys = [k for k in SCORING_KEYS if k in body]
    extra = sorted(set(body) - set(SCORING_KEYS) - {"params"})
    if extra:
        raise BadInput(
            f'unexpected key(s) {extra}: the body must have exactly one of {list(SCORING_KEYS)} and optionally "params"'
        )
    if len(keys) != 1:
        raise BadInput(f"body must have exactly one of {list(SCORING_KEYS)}, got {keys or 'none'}")
    key = keys[0]
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise BadInput(f'"params" must be a JSON object, got {type(params).__name__}')
    check_rows(raw_rows(key, body[key]), max_rows, key)
    return key, body[key], params


def check_rows(rows: int | None, max_rows: int, where: str) -> None:
    if rows is None:
        return
    if rows == 0:
        raise BadInput(f"{where} has no rows to score")
    if rows > max_rows:
        raise TooLarge(f"too many rows: {rows} > {max_rows} per request (MAX_ROWS); split the request")


def count_rows(model, data) -> int:
    """Rows in the parsed input; for a type-hinted model a list has one row per item, anything
    else is one input."""
    if modelinfo.from_type_hints(model):
        return len(data) if isinstance(data, list) else 1
    return rows_of(data)


def rows_of(data) -> int:
    """Rows in parsed data: a DataFrame, an array (first dimension), a dict of columns, a list."""
    import numpy as np
    import pandas as pd

    if isinstance(data, (pd.DataFrame, pd.Series, list, tuple)):
        return len(data)
    if isinstance(data, np.ndarray):
        return 1 if data.ndim == 0 else data.shape[0]
    if isinstance(data, dict):
        return max(
            (rows_of(v) if isinstance(v, (np.ndarray, list, tuple, pd.Series)) else 1 for v in data.values()), default=0
        )
    return 1


def parse(model, key: str, value):
    """The payload as the model's input, parsed the way MLflow's scoring server parses it."""
    schema = modelinfo.input_schema(model)
    if modelinfo.from_type_hints(model):
        # MLflow takes `inputs` as is for these and validates it against the hints in predict.
        if key != "inputs":
            raise BadInput(
                f"this model's signature comes from its type hints ({modelinfo.describe_inputs(model)}): "
                f'send {{"inputs": ...}}, not "{key}"'
            )
        return value
    try:
        return scoring_server.infer_and_parse_data({key: value}, schema)
    except MlflowException as exc:
        raise BadInput(mlflow_message(exc, schema)) from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise BadInput(trim(f"could not read {key}: {type(exc).__name__}: {exc}")) from None


def text_data(model, texts: list[str], where: str):
    """A list of texts as the input of a model with one string input; BadInput otherwise."""
    import pandas as pd

    how = modelinfo.text_input(model)
    if how is None:
        raise BadInput(
            f"{where} takes text, but this model's inputs are {modelinfo.describe_inputs(model)}: "
            'POST /invocations with {"dataframe_split": {"columns": [...], "data": [[...], ...]}} or '
            '{"dataframe_records": [{...}, ...]} (tensors: {"inputs": [...]})'
        )
    kind, column = how
    return pd.DataFrame({column: texts}) if kind == "frame" else list(texts)


def check_string_columns(model, data) -> None:
    """A supplement to MLflow's enforcement, which lets any object through a string column of
    an object-dtype DataFrame: a number or a null there would only make the model crash."""
    import pandas as pd
    from mlflow.types import DataType

    schema = modelinfo.input_schema(model)
    if schema is None or not isinstance(data, pd.DataFrame) or schema.is_tensor_spec() or not schema.has_input_names():
        return
    for spec in schema.inputs:
        if spec.type != DataType.string or spec.name not in data.columns:
            continue
        column = data[spec.name]
        if isinstance(column, pd.DataFrame):  # duplicated column names: MLflow's problem to judge
            continue
        for row, value in enumerate(column.tolist()):
            if isinstance(value, str):
                continue
            missing = value is None or (isinstance(value, float) and value != value)
            if missing and not spec.required:
                continue
            got = "null" if missing else f"{type(value).__name__} {trim(repr(value), 60)}"
            raise BadInput(f"column {spec.name!r} must hold strings ({spec!r}); row {row} has {got}")


def mlflow_message(exc: MlflowException, schema=None, data=None) -> str:
    """MLflow's message without the repr of the whole input it embeds, plus the expected type
    of any missing column."""
    message = getattr(exc, "message", None) or str(exc)
    if schema is not None:
        marker = f"with schema '{schema}'. Error: "
        at = message.find(marker)
        if at >= 0:
            message = "input does not match the model signature: " + message[at + len(marker) :]
    if message.startswith("Failed to enforce schema of data"):  # no marker found: drop the data
        tail = message.rsplit("Error: ", 1)
        message = "input does not match the model signature" + (f": {tail[1]}" if len(tail) == 2 else "")
    if "missing inputs" in message:
        message += _missing_hint(schema, data)
    return trim(message)


def _missing_hint(schema, data) -> str:
    import pandas as pd

    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return ""
    if isinstance(data, pd.DataFrame):
        present = {str(c) for c in data.columns}
    elif isinstance(data, dict):
        present = {str(c) for c in data}
    else:
        present = set()
    missing = [spec for spec in schema.inputs if spec.required and str(spec.name) not in present]
    if not missing:
        return ""
    shown = ", ".join(repr(spec) for spec in missing[:10])
    more = f", ... ({len(missing)} in all)" if len(missing) > 10 else ""
    return f" Expected: {shown}{more}."


# -- prediction -------------------------------------------------------------------------------
def predict(model, data, params: dict | None, *, input_errors_are_client_errors: bool = True):
    """model.predict with MLflow's schema enforcement; BadInput for what the client can fix,
    ModelFailed for the rest. `input_errors_are_client_errors`: whether a ValueError or
    TypeError raised by the model itself is blamed on the input (400) or on the model (500)."""
    import pandas as pd

    schema = modelinfo.input_schema(model)
    if params and modelinfo.params_schema(model) is None:
        raise BadInput(f"this model takes no params (its signature has no params schema); got {sorted(params)}")
    try:
        if params is not None and _takes_params(model):
            return model.predict(data, params=params)
        return model.predict(data)
    except MlflowException as exc:
        if exc.error_code in CLIENT_ERROR_CODES:
            raise BadInput(mlflow_message(exc, schema, data)) from None
        log.exception("model raised %s", type(exc).__name__)
        raise ModelFailed(trim(f"the model failed: {exc.message}")) from None
    except (ValueError, TypeError) as exc:
        if not input_errors_are_client_errors:
            log.exception("model raised %s on valid input", type(exc).__name__)
            raise ModelFailed(trim(f"the model failed: {type(exc).__name__}: {exc}")) from None
        hint = ""
        if isinstance(data, pd.DataFrame):
            nulls = [str(c) for c in data.columns[data.isna().any()]]
            if nulls:
                hint = f" (null values in column(s) {nulls[:10]})"
        raise BadInput(trim(f"the model could not score this input: {type(exc).__name__}: {exc}{hint}")) from None
    except Exception as exc:
        log.exception("model raised %s", type(exc).__name__)
        raise ModelFailed(trim(f"the model failed: {type(exc).__name__}: {exc}")) from None


def _takes_params(model) -> bool:
    try:
        return "params" in inspect.signature(model.predict).parameters
    except (TypeError, ValueError):
        return False


def prediction_list(raw, rows: int) -> tuple[list, list[str]]:
    """One JSON-safe prediction per row, and notes on lossy conversions (NaN -> null, ...).

    A one-column DataFrame gives its values, a wider one a record (object) per row, an array
    its rows, a dict of equally long columns a record per row."""
    import numpy as np
    import pandas as pd

    if isinstance(raw, pd.DataFrame):
        items = raw.iloc[:, 0].tolist() if raw.shape[1] == 1 else raw.to_dict(orient="records")
    elif isinstance(raw, pd.Series):
        items = raw.tolist()
    elif isinstance(raw, np.ndarray):
        items = [raw] if raw.ndim == 0 else raw
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    elif isinstance(raw, dict) and raw and all(_length(v) == rows for v in raw.values()):
        columns = {k: list(v) for k, v in raw.items()}
        items = [{k: column[i] for k, column in columns.items()} for i in range(rows)]
    else:
        items = [raw]
    counts = Counter()
    predictions = to_jsonable(items, counts)
    if not isinstance(predictions, list):  # a 0-d array converts to a scalar
        predictions = [predictions]
    if len(predictions) != rows:
        raise ModelFailed(f"the model returned {len(predictions)} prediction(s) for {rows} row(s)")
    return predictions, notes_text(counts)


def _length(value) -> int | None:
    try:
        return len(value) if not isinstance(value, (str, bytes, dict)) else None
    except TypeError:
        return None
