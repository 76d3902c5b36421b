"""`python -m model_setup`: wait for MLflow, then register the versions of the demo MODEL_NAME
names (sentiment, breast-cancer, diabetes), or check that the user's own model is registered.

Env: MLFLOW_TRACKING_URI (required), MODEL_NAME (sentiment), EXPERIMENT_NAME (<MODEL_NAME>-canary),
MLFLOW_WAIT_S (120). Exits 0 when the registry holds the versions (or the user's model with a
production alias); 2 for a bad setting or a MODEL_NAME with nothing to roll out; 1 on other failures.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import requests

log = logging.getLogger("model_setup")


def wait_for_server(tracking_uri: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            resp = requests.get(tracking_uri.rstrip("/") + "/health", timeout=3)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(1)
    raise TimeoutError(f"MLflow at {tracking_uri} did not answer within {timeout_s:g}s ({last})")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    model_name = os.environ.get("MODEL_NAME") or "sentiment"
    experiment = os.environ.get("EXPERIMENT_NAME") or f"{model_name}-canary"
    if not tracking_uri.startswith(("http://", "https://")):
        log.error("MLFLOW_TRACKING_URI must be the http(s) URL of the MLflow server, got %r", tracking_uri)
        return 2
    try:
        wait_for_server(tracking_uri, float(os.environ.get("MLFLOW_WAIT_S", "120")))
        # Imported late: mlflow takes seconds to import, and a bad URI should fail fast.
        from model_setup.registration import UnknownModel, setup
    except Exception as exc:
        log.exception("model setup failed: %s", exc)
        return 1
    try:
        roles = setup(tracking_uri, model_name, experiment)
    except UnknownModel as exc:
        log.error("%s", exc)
        return 2
    except Exception as exc:  # one line for the operator, the traceback for debugging
        log.exception("model setup failed: %s", exc)
        return 1
    log.info("model setup done: %s", ", ".join(f"{r}=v{v}" for r, v in roles.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
