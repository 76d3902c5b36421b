#!/bin/sh
# Starts Alertmanager with the webhook URL from ALERT_WEBHOOK_URL. Alertmanager does not expand
# environment variables in its configuration, so the URL goes to the file alertmanager.yml's
# `url_file` reads (in the data directory: the one place the image's user may write).
# Without ALERT_WEBHOOK_URL it runs ui-only.yml: alerts shown at :9093, sent nowhere. The binary is
# found on PATH (/bin in the official image, /usr/local/bin in a Debian-based one).
set -eu
config_dir=$(dirname "$0")
if [ -z "${ALERT_WEBHOOK_URL:-}" ]; then
  echo "ALERT_WEBHOOK_URL is empty: alerts are shown in Alertmanager's UI and sent nowhere" >&2
  exec alertmanager --config.file="$config_dir/ui-only.yml" "$@"
fi
printf '%s' "$ALERT_WEBHOOK_URL" > /alertmanager/webhook-url
exec alertmanager --config.file="$config_dir/alertmanager.yml" "$@"
