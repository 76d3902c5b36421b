#!/usr/bin/env bash
# Installs what `make swarm-test` needs beyond Docker: Debian's docker-registry (the local registry
# the second engine pulls the images from). Uses apt-get when it is missing; says plainly what is
# missing otherwise, so the test never skips itself quietly.
set -euo pipefail
command -v docker >/dev/null 2>&1 || { echo "missing for the swarm test: docker (run ../shared/containers/setup or install Docker)" >&2; exit 1; }
command -v docker-registry >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing for the swarm test: docker-registry (install it, e.g. 'sudo apt-get install docker-registry')" >&2
  exit 1
fi
echo "installing docker-registry with apt-get" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
# The package starts its own registry service on :5000; the test runs its own.
(systemctl disable --now docker-registry || service docker-registry stop) >/dev/null 2>&1 || true
