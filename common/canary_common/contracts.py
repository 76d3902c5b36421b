"""Every name more than one part of Canary relies on: arms, metric names and labels, registry
tags and HTTP headers. Code imports them from here; the Prometheus rules, the analysis files and
the dashboards are YAML and JSON, so tests/unit/test_contracts.py checks every name in them
against this module, and checks that docs/contracts.md describes each one.

Changing a value here changes a contract with things outside this repository (dashboards,
alerts and scripts of users, tags of registered models): say so in docs/contracts.md.
"""

from __future__ import annotations

# -- arms: the `model` label of the router's series, and the registry aliases --------------------
PRODUCTION = "production"
CANARY = "canary"
ARMS = (PRODUCTION, CANARY)

# -- metric labels -------------------------------------------------------------------------------
MODEL_LABEL = "model"  # an arm
VERSION_LABEL = "version"  # the registered model version that answered
STATUS_LABEL = "status"  # "ok" | "error"
OUTCOME_LABEL = "outcome"  # "correct" | "incorrect" (labelled predictions)
ALIAS_LABEL = "alias"  # a model server's alias (production | canary)
STATUS_OK, STATUS_ERROR = "ok", "error"
OUTCOME_CORRECT, OUTCOME_INCORRECT = "correct", "incorrect"

# -- the router's series (router/canary_router/metrics.py) ----------------------------------------
ROUTER_REQUESTS = "canary_router_requests_total"
ROUTER_DURATION = "canary_router_request_duration_seconds"
ROUTER_LABELLED = "canary_router_labelled_predictions_total"
ROUTER_FALLBACKS = "canary_router_fallbacks_total"
ROUTER_WEIGHT = "canary_router_canary_weight_ratio"
ROUTER_FAIL_CLOSED = "canary_router_fail_closed"
ROUTER_EJECTIONS = "canary_router_ejections_total"
ROUTER_EJECTED_REQUESTS = "canary_router_ejected_requests_total"
ROUTER_EJECTED = "canary_router_ejected"
ROUTER_RESPONSES = "canary_router_responses_total"
ROUTER_FORCED = "canary_router_forced_requests_total"
ROUTER_PREDICTED_CLASS = "canary_router_predicted_class_total"
ROUTER_FEEDBACK = "canary_router_feedback_total"
ROUTER_ABS_ERROR = "canary_router_prediction_abs_error"
ROUTER_SHADOW_REQUESTS = "canary_router_shadow_requests_total"
ROUTER_SHADOW_DURATION = "canary_router_shadow_duration_seconds"
ROUTER_SHADOW_LABELLED = "canary_router_shadow_labelled_total"
ROUTER_SHADOW_ABS_ERROR = "canary_router_shadow_prediction_abs_error"
ROUTER_SHADOW_AGREEMENT = "canary_router_shadow_agreement_total"
ROUTER_SHADOW_DROPPED = "canary_router_shadow_dropped_total"
ROUTER_SHADOW_RATIO = "canary_router_shadow_ratio"
# Shadow copies are counted apart from live traffic: the live series and their shadow twins.
SHADOW_TWINS = {
    ROUTER_REQUESTS: ROUTER_SHADOW_REQUESTS,
    ROUTER_LABELLED: ROUTER_SHADOW_LABELLED,
    ROUTER_DURATION: ROUTER_SHADOW_DURATION,
    ROUTER_ABS_ERROR: ROUTER_SHADOW_ABS_ERROR,
}

# -- the model servers' series (model-server/model_server/metrics.py) -----------------------------
MODEL_SERVER_REQUESTS = "model_server_requests_total"
MODEL_SERVER_DURATION = "model_server_request_duration_seconds"
MODEL_SERVER_MODEL_INFO = "model_server_model_info"
MODEL_SERVER_RELOADS = "model_server_model_reloads_total"
MODEL_SERVER_LOAD_FAILURES = "model_server_model_load_failures_total"
MODEL_SERVER_LOAD_ERROR = "model_server_model_load_error"
MODEL_SERVER_FAULT_SETTING = "model_server_fault_setting"

# -- the controller's series (controller/canary_controller/telemetry.py, notify.py) ---------------
CONTROLLER_WEIGHT = "canary_controller_weight_ratio"
CONTROLLER_PHASE = "canary_controller_phase"
CONTROLLER_DECISIONS = "canary_controller_decisions_total"
CONTROLLER_PROMETHEUS_UP = "canary_controller_prometheus_up"
CONTROLLER_DECISION_INFO = "canary_controller_decision_info"
CONTROLLER_EVIDENCE_LOG_E = "canary_controller_evidence_log_e_value"
CONTROLLER_EVIDENCE_THRESHOLD = "canary_controller_evidence_log_threshold"
CONTROLLER_EVIDENCE_ESTIMATE = "canary_controller_evidence_estimate"
CONTROLLER_EVIDENCE_BOUND = "canary_controller_evidence_bound"
CONTROLLER_EVIDENCE_N = "canary_controller_evidence_n"
CONTROLLER_EVIDENCE_VALUE = "canary_controller_evidence_value"
CONTROLLER_WEBHOOK_DELIVERIES = "canary_controller_webhook_deliveries_total"

METRICS = tuple(
    value
    for name, value in sorted(globals().items())
    if name.startswith(("ROUTER_", "MODEL_SERVER_", "CONTROLLER_")) and isinstance(value, str)
)

# -- registry tags: on the registered model (the rollout state) -----------------------------------
STATE_TAG = "canary.state"  # the one atomic state: JSON with a generation (compare-and-set)
# The tags of the previous release: mirrored after every write, read only without STATE_TAG.
WEIGHT_TAG = "canary.weight"
MODE_TAG = "canary.mode"
PHASE_TAG = "canary.phase"
REASON_TAG = "canary.reason"
UPDATED_TAG = "canary.updated_at"
# `<version>@<epoch s>`, new for every rollout: the controller starts a fresh analysis when it changes.
ROLLOUT_TAG = "canary.rollout"
# Percent of production's requests copied to the canary while its live weight is 0.
SHADOW_TAG = "canary.shadow_percentage"
# -- registry tags: on a model version (why it serves where) --------------------------------------
ROLLBACK_REASON_TAG = "canary.rollback_reason"
ROLLED_BACK_AT_TAG = "canary.rolled_back_at"
PROMOTED_AT_TAG = "canary.promoted_at"
PROMOTION_REASON_TAG = "canary.promotion_reason"
DECISION_TAG = "canary.decision"  # the evidence of the latest decision, JSON
TASK_TAG = "canary.task"  # "classification" or "regression"
CLASSES_TAG = "canary.classes"  # a JSON list of the class labels

TAGS = tuple(value for name, value in sorted(globals().items()) if name.endswith("_TAG"))

# -- HTTP headers ----------------------------------------------------------------------------------
REQUEST_ID_HEADER = "X-Request-ID"  # kept or made at the edge, returned on every answer
KEY_HEADER = "X-Canary-Key"  # sticky users: the same key, the same arm at a given weight
ROUTE_HEADER = "X-Canary-Route"  # testers' forced route (ALLOW_FORCED_ROUTE=1)
EJECTED_HEADER = "X-Canary-Ejected"  # "1": answered by production while the canary is ejected
FALLBACK_HEADER = "X-Canary-Fallback"  # "1": the canary failed and production answered
ASSIGNMENT_HEADER = "X-Canary-Assignment"  # how the arm was chosen (random, sticky, forced)
OWNER_HEADER = "X-Canary-Owner-Token"  # router to router: the owner replica of a feedback id
DELIVERY_HEADER = "X-Canary-Delivery"  # the decision webhook's delivery id

HEADERS = tuple(value for name, value in sorted(globals().items()) if name.endswith("_HEADER"))
