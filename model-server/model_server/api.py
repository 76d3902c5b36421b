"""The model server's routes: scoring (the text API and MLflow's /invocations) and operations
(health, readiness, faults, metrics). Each view reads the ModelService from the app."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from model_server import metrics, modelinfo, scoring
from model_server.faults import FaultError
from model_server.payloads import parse_json, predict_texts
from model_server.service import EXTENSION, ModelService, error

scoring_bp = Blueprint("scoring", __name__)
ops_bp = Blueprint("ops", __name__)


def _service() -> ModelService:
    return current_app.extensions[EXTENSION]


def _body():
    return parse_json(request.get_data(cache=False))


def _answer(service: ModelService, loaded, answer: dict, notes) -> Response:
    answer.update(service.describe(loaded))
    if notes:
        answer["notes"] = notes
    return jsonify(answer)


@scoring_bp.post("/predict")
def predict():
    """The text API: {"text": str} or {"texts": [str, ...]}, for a model with one string input."""
    service = _service()
    texts, batch = predict_texts(_body(), service.settings.max_texts)
    loaded = service.serving()
    data = scoring.text_data(loaded.model, texts, "/predict")
    # Valid texts that a text model cannot score are the model's fault: 500, not 400.
    result, notes = service.score(loaded, data, len(texts), input_errors_are_client_errors=False)
    if result is None:
        return notes  # the injected error response
    return _answer(service, loaded, {"predictions": result} if batch else {"prediction": result[0]}, notes)


@scoring_bp.post("/invocations")
def invocations():
    """MLflow's scoring protocol, parsed and checked against the signature by MLflow."""
    service = _service()
    key, value, params = scoring.scoring_request(_body(), service.settings.max_rows)
    loaded = service.serving()
    data = scoring.parse(loaded.model, key, value)
    rows = scoring.count_rows(loaded.model, data)
    scoring.check_rows(rows, service.settings.max_rows, key)
    scoring.check_string_columns(loaded.model, data)
    result, notes = service.score(loaded, data, rows, params)
    if result is None:
        return notes
    return _answer(service, loaded, {"predictions": result}, notes)


@ops_bp.get("/health")
def health():
    return jsonify({"status": "alive"})


@ops_bp.get("/ready")
def ready():
    service = _service()
    follower = service.follower
    model, load_error = follower.current, follower.load_error
    if model is None:
        return jsonify(
            {
                "ready": False,
                "alias": service.alias,
                "reason": follower.last_error or "loading",
                "alias_missing": follower.alias_missing,
                "load_error": load_error,
            }
        ), 503
    answer = {"ready": True}
    answer.update(service.describe(model))
    answer.update(
        loaded_at=model.loaded_at,
        task_source=model.task_source,
        flavor=modelinfo.loader_module(model.model),
        text_input=modelinfo.text_input(model.model) is not None,
        signature=modelinfo.signature_summary(model.model),
        load_error=load_error,
    )
    return jsonify(answer)


@ops_bp.get("/faults")
def get_faults():
    return jsonify(_service().faults.current().as_dict())


@ops_bp.post("/faults")
def set_faults():
    try:
        return jsonify(_service().faults.update(_body()).as_dict())
    except FaultError as exc:
        return error(400, str(exc))


@ops_bp.get("/metrics")
def metrics_endpoint():
    _service().faults.current()  # so the scraped worker reports the newest fault setting
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
