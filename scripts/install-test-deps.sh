#!/usr/bin/env bash
# Installs the binaries the process-mode tests run for real: Prometheus (with promtool),
# Alertmanager, nginx, and Chromium (headless, for the live rollout page's browser test). Uses
# apt-get when they are missing; says plainly what is missing otherwise.
set -euo pipefail
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool   >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v nginx      >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v chromium   >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
# kubectl (for `kubectl kustomize` of deploy/kubernetes) is not a Debian package: say so only.
command -v kubectl >/dev/null 2>&1 || echo "kubectl is missing: the Kubernetes manifest tests need it (https://kubernetes.io/docs/tasks/tools/)" >&2
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing for the tests: $pkgs(install them, e.g. 'sudo apt-get install $pkgs')" >&2
  exit 1
fi
echo "installing $pkgs with apt-get" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
# Debian's packages start system services: the tests start their own on free ports.
systemctl stop prometheus prometheus-alertmanager nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
