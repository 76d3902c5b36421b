#!/bin/sh
# The MLflow tracking server and model registry of the compose stack.
# Host names allowed: the compose service name and the published loopback port (DNS-rebinding guard).
set -eu
PROM_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/mlflow-prom}"
# Stale metric files from a previous start would be summed into this one's.
rm -rf "$PROM_DIR" && mkdir -p "$PROM_DIR" /mlflow/artifacts
export PROMETHEUS_MULTIPROC_DIR="$PROM_DIR"
# MLflow 3's job runner (GenAI evaluation jobs, which Canary does not use) starts seven polling
# consumer processes that take a fifth of a core doing nothing: off unless asked for.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
exec mlflow server \
  --host 0.0.0.0 --port "${MLFLOW_PORT:-5000}" \
  --backend-store-uri "${MLFLOW_BACKEND_STORE_URI:-sqlite:////mlflow/mlflow.db}" \
  --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-/mlflow/artifacts}" \
  --serve-artifacts \
  --workers "${MLFLOW_WORKERS:-2}" \
  --expose-prometheus "$PROM_DIR" \
  --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-mlflow,mlflow:5000,localhost,localhost:*,127.0.0.1,127.0.0.1:*}"
