#!/usr/bin/env bash
# Installs what `make bench-router` needs beyond the test binaries: wrk (the load generator).
# Uses apt-get when it is missing; says plainly what is missing otherwise.
set -euo pipefail
command -v wrk >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing for the router benchmark: wrk (install it, e.g. 'sudo apt-get install wrk')" >&2
  exit 1
fi
echo "installing wrk with apt-get" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
