"""GET /openapi.json: the router's public and admin API as OpenAPI 3.0.

Written by hand next to the code it describes; tests/unit/test_router_openapi.py checks that every
route is here and nothing else is, and the fuzz test checks every answer against it.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from canary_common.text import NOT_BLANK_PATTERN

bp = Blueprint("openapi", __name__)

PERCENT = r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)$"
NOT_BLANK = NOT_BLANK_PATTERN


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict | str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema) if isinstance(schema, str) else schema}},
    }


def _errors(*codes: int) -> dict:
    words = {
        400: "bad input",
        401: "missing or wrong admin token",
        403: "refused",
        404: "not found",
        409: "conflict",
        410: "gone (expired)",
        413: "body over MAX_BODY_BYTES",
        422: "cannot be judged",
        502: "an upstream failed",
        503: "an upstream is unavailable",
    }
    return {str(c): _json("Error", words[c]) for c in codes}


def _scoring(key: str, schema: dict) -> dict:
    """One MLflow format: its key, optional params, and the router's fields."""
    truths = {
        name: {"nullable": True, "oneOf": [one, {"type": "array", "minItems": 1, "items": one}]}
        for name, one in (("actual_label", LABEL), ("actual_value", VALUE))
    }
    return {
        "type": "object",
        "required": [key],
        "additionalProperties": False,
        "properties": {key: schema, "params": {"type": "object", "nullable": True}, **truths, "user_id": USER_ID},
    }


ADMIN = [{"bearerAuth": []}]
LABEL = {
    "description": "a true class: one of the model's classes (an integer or a string)",
    "oneOf": [{"type": "integer"}, {"type": "string", "pattern": NOT_BLANK, "maxLength": 256}],
}
VALUE = {"type": "number", "description": "a regressor's true value (finite)"}
REQUEST_ID = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9_-]{4,1000}\.[A-Za-z0-9_-]{22}$",
    "description": "the request_id of a /predict answer (403 if not issued by this fleet)",
}
SCORING_SCHEMAS = {
    "dataframe_split": {"type": "object"},
    "dataframe_records": {"type": "array", "minItems": 1},
    "instances": {},
    "inputs": {},
}  # any JSON: MLflow's parsing judges these two
USER_ID = {
    "description": "sticky key when no X-Canary-Key header is sent; null is the same as absent",
    "nullable": True,
    "oneOf": [{"type": "string", "pattern": NOT_BLANK, "maxLength": 256}, {"type": "integer"}],
}

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "PredictRequest": {
        "oneOf": [{"$ref": "#/components/schemas/TextRequest"}, {"$ref": "#/components/schemas/ScoringRequest"}]
    },
    "TextRequest": {
        "type": "object",
        "required": ["text"],
        "description": "the lab's shorthand, for a model with one string input",
        "properties": {
            "text": {"type": "string", "pattern": NOT_BLANK, "description": "the text to score"},
            "actual_label": {**LABEL, "nullable": True},
            "actual_value": {**VALUE, "nullable": True},
            "user_id": USER_ID,
        },
    },
    "ScoringRequest": {
        "oneOf": [_scoring(key, schema) for key, schema in SCORING_SCHEMAS.items()],
        "description": "an MLflow scoring payload, forwarded to the model server's /invocations as "
        "it is, plus the router's fields (one truth per row; the model's signature "
        "decides what the rows may hold)",
    },
    "PredictResponse": {
        "type": "object",
        "required": ["model_version", "version", "latency_ms"],
        "properties": {
            "prediction": {"description": "what the model predicted (text requests, and payloads of one row)"},
            "predictions": {"type": "array", "description": "one per row (scoring payloads)"},
            "task": {"type": "string", "enum": ["classification", "regression"], "nullable": True},
            "model_version": {"type": "string", "enum": ["production", "canary"]},
            "version": {"type": "string"},
            "latency_ms": {"type": "number"},
            "request_id": {"type": "string", "description": "signed id to send a late label to /feedback"},
            "request_ids": {"type": "array", "items": {"type": "string"}, "description": "one per row"},
        },
    },
    "FeedbackRequest": {
        "description": "actual_label for a classifier's prediction, actual_value for a regressor's",
        "oneOf": [
            {
                "type": "object",
                "required": ["request_id", truth],
                "additionalProperties": False,
                "properties": {"request_id": REQUEST_ID, truth: schema},
            }
            for truth, schema in (("actual_label", LABEL), ("actual_value", VALUE))
        ],
    },
    "FeedbackResponse": {
        "type": "object",
        "required": ["request_id", "model_version", "version", "prediction"],
        "properties": {
            "request_id": {"type": "string"},
            "model_version": {"type": "string", "enum": ["production", "canary"]},
            "version": {"type": "string"},
            "prediction": {},
            "actual_label": LABEL,
            "actual_value": VALUE,
            "outcome": {"type": "string", "enum": ["correct", "incorrect"]},
            "abs_error": {"type": "number", "nullable": True},
            "recorded_by": {"type": "string"},
        },
    },
    "Stats": {"type": "object", "required": ["production", "canary", "canary_percentage", "totals", "replicas"]},
    "Rollout": {
        "type": "object",
        "required": ["generated_at", "status", "timeline", "fleet", "errors"],
        "properties": {
            "generated_at": {"type": "number"},
            "status": {
                "type": "object",
                "nullable": True,
                "description": "the controller's GET /status (null if unreachable)",
            },
            "timeline": {
                "type": "object",
                "nullable": True,
                "description": "the controller's GET /timeline: points, history",
            },
            "fleet": {"$ref": "#/components/schemas/Stats"},
            "errors": {"type": "array", "items": {"type": "string"}},
        },
    },
    "LabArm": {
        "type": "object",
        "required": ["requests", "accuracy", "avg_latency_ms"],
        "properties": {
            "requests": {"type": "integer"},
            "accuracy": {"type": "number"},
            "avg_latency_ms": {"type": "number"},
        },
    },
    "LabMetrics": {
        "type": "object",
        "required": ["canary_percentage", "production", "canary"],
        "properties": {
            "canary_percentage": {"type": "number"},
            "production": {"$ref": "#/components/schemas/LabArm"},
            "canary": {"$ref": "#/components/schemas/LabArm"},
        },
    },
    "CheckRollback": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["rollback", "waiting", "healthy"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "canary_accuracy": {"type": "number", "nullable": True},
            "threshold": {"type": "number", "nullable": True},
            "analysis": {"type": "object", "description": "the controller's evidence"},
        },
    },
    "LocalStats": {
        "type": "object",
        "required": ["pid", "counts", "state"],
        "properties": {
            "pid": {"type": "integer"},
            "counts": {"type": "object", "additionalProperties": {"type": "number"}},
            "state": {"type": "object"},
        },
    },
    "Ready": {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}},
    "Object": {"type": "object"},
}


def _percent_param(what: str) -> dict:
    return {
        "name": "percentage",
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "string", "pattern": PERCENT},
    }


def _admin_post(summary: str, ok: str, params=None, errors=(401, 503)) -> dict:
    op = {"summary": summary, "security": ADMIN, "responses": {"200": _json("Object", ok), **_errors(*errors)}}
    if params:
        op["parameters"] = params
    return {"post": op}


PATHS = {
    "/predict": {
        "post": {
            "summary": "Classify a text; the router picks production or the canary.",
            "parameters": [
                {
                    "name": "X-Canary-Key",
                    "in": "header",
                    "required": False,
                    "description": "sticky key: the same key gets the same model at a given weight",
                    "schema": {"type": "string", "pattern": "^[!-~]{1,256}$"},
                },
                {
                    "name": "X-Canary-Route",
                    "in": "header",
                    "required": False,
                    "description": "force a side (testers; only with ALLOW_FORCED_ROUTE=1, else 403)",
                    "schema": {"type": "string", "enum": ["canary", "production"]},
                },
                {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": False,
                    "description": "echoed in the X-Request-ID response header if it matches "
                    "^[A-Za-z0-9_.:-]{1,128}$ (else the router's own id is returned there)",
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PredictRequest")}}},
            "responses": {"200": _json("PredictResponse", "the prediction"), **_errors(400, 403, 409, 413, 502, 503)},
        }
    },
    "/feedback": {
        "post": {
            "summary": "A late label for an earlier prediction, by its request_id.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FeedbackRequest")}}},
            "responses": {"200": _json("FeedbackResponse", "counted"), **_errors(400, 403, 409, 410, 413, 422, 503)},
        }
    },
    "/feedback/owner": {
        "post": {
            "summary": "Replica to replica: the owner replica's part of /feedback (needs X-Canary-Owner-Token).",
            "parameters": [
                {"name": "X-Canary-Owner-Token", "in": "header", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FeedbackRequest")}}},
            "responses": {"200": _json("FeedbackResponse", "counted"), **_errors(400, 403, 409, 410, 413, 422, 503)},
        }
    },
    "/stats": {
        "get": {"summary": "Per-model summary of the whole fleet.", "responses": {"200": _json("Stats", "summary")}}
    },
    "/stats/local": {
        "get": {
            "summary": "This replica's counts (for /stats to sum).",
            "responses": {"200": _json("LocalStats", "counts")},
        }
    },
    "/": {
        "get": {
            "summary": "The live rollout page for people (HTML; charts drawn from /rollout.json).",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
        }
    },
    "/rollout.json": {
        "get": {
            "summary": "What the live page shows: the controller's /status and /timeline, and the fleet summary.",
            "parameters": [
                {
                    "name": "since",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "number"},
                    "description": "only the timeline points after this epoch time (seconds)",
                }
            ],
            "responses": {"200": _json("Rollout", "the rollout; 'errors' says what could not be read"), **_errors(400)},
        }
    },
    "/health": {"get": {"summary": "Alive.", "responses": {"200": _json("Object", "alive")}}},
    "/ready": {
        "get": {
            "summary": "Ready once the rollout state was read.",
            "responses": {"200": _json("Ready", "ready"), "503": _json("Ready", "not ready")},
        }
    },
    "/metrics": {
        "get": {
            "summary": "The lab's metrics: per arm requests, accuracy % and average latency.",
            "responses": {"200": _json("LabMetrics", "summary of the whole fleet")},
        }
    },
    "/metrics/prometheus": {
        "get": {
            "summary": "This replica's Prometheus exposition (scraped directly).",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }
    },
    "/openapi.json": {"get": {"summary": "This description.", "responses": {"200": _json("Object", "OpenAPI")}}},
    "/set_canary/{percentage}": _admin_post(
        "Set the canary weight (manual mode).",
        "weight set",
        [_percent_param("canary share, 0..100")],
        (400, 401, 404, 503),
    ),
    "/shadow/{percentage}": _admin_post(
        "Set the share of production requests copied to the canary.",
        "shadow share set",
        [_percent_param("shadow share, 0..100")],
        (400, 401, 404, 503),
    ),
    "/simulate_failure/{switch}": _admin_post(
        "Turn the canary's bad-prediction simulation on (1) or off (0).",
        "faults set",
        [{"name": "switch", "in": "path", "required": True, "schema": {"type": "string", "enum": ["0", "1"]}}],
        (400, 401, 404, 503),
    ),
    "/reset": _admin_post(
        "Reset every replica's stats, clear faults, weight back to the default (a fresh manual rollout of the canary).",
        "reset",
        errors=(401, 502),
    ),
    "/check_rollback": {
        "post": {
            "summary": "Ask the controller to analyse and act now (the lab's answer shape).",
            "security": ADMIN,
            "responses": {"200": _json("CheckRollback", "the verdict"), **_errors(401, 502, 503)},
        }
    },
    "/stats/reset_local": _admin_post("This replica's part of /reset.", "reset", errors=(401,)),
}

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "Canary router",
        "version": "1.0.0",
        "description": "Splits /predict between the production and canary model servers. Admin "
        "operations need `Authorization: Bearer <ADMIN_TOKEN>` when ADMIN_TOKEN is set.",
    },
    "paths": PATHS,
    "components": {"schemas": SCHEMAS, "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
}


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(SPEC)
