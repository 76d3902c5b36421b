#!/bin/sh
# Canary nginx entrypoint: render nginx.conf.template with envsubst, substituting only our ${NGX_*}
# names, then run nginx in the foreground (`daemon off;` is in the template). The one renderer: the
# process-mode tests call `entrypoint.sh render` too.
#
#   entrypoint.sh            render to $NGINX_RUN_DIR/nginx.conf and exec nginx
#   entrypoint.sh render     print the rendered config and exit
#   entrypoint.sh check      only the safety check below (compose's preflight service), then exit
#
# Environment (defaults in brackets):
#   ROUTER_UPSTREAM       host:port of the router replicas, comma-separated [router:8000]
#   CONTROLLER_UPSTREAM   host:port of the controller [controller:8000]
#   ADMIN_TOKEN           when non-empty admin calls require "Authorization: Bearer <token>"
#   CANARY_BIND, CANARY_TOOLS_BIND  host addresses the edge and the tools are published on
#                         [127.0.0.1]: beyond loopback, it refuses to start without ADMIN_TOKEN
#   NGINX_PUBLIC_PORT [8080]  NGINX_LISTEN_HOST [0.0.0.0]
#   NGINX_RESOLVER        DNS server for the controller name [first nameserver in /etc/resolv.conf]
#   NGINX_DNS_WATCH_S     seconds between checks of the router name's addresses; nginx reloads
#                         when they change (replicas scaled or recreated); 0 turns it off [1]
#   NGINX_WAIT_DNS_S      how long to wait at start for the router name to resolve [60]
#   NGINX_RUN_DIR [/tmp/nginx-canary]  NGINX_ACCESS_LOG [/dev/stdout]  NGINX_ERROR_LOG [stderr]
#   NGINX_WORKER_PROCESSES [auto]  NGINX_USER (worker user when started as root) [image default]
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TEMPLATE=${NGINX_TEMPLATE:-$HERE/nginx.conf.template}
RUN_DIR=${NGINX_RUN_DIR:-/tmp/nginx-canary}
ROUTER_UPSTREAM=${ROUTER_UPSTREAM:-router:8000}
CONTROLLER_UPSTREAM=${CONTROLLER_UPSTREAM:-controller:8000}
ADMIN_TOKEN=${ADMIN_TOKEN:-}
DNS_WATCH_S=${NGINX_DNS_WATCH_S:-1}
WAIT_DNS_S=${NGINX_WAIT_DNS_S:-60}

log() { echo "canary-nginx: $*" >&2; }
die() { log "$*"; exit 1; }

# The token is placed inside a quoted nginx string: allow only characters that cannot end it.
case $ADMIN_TOKEN in
    *[!A-Za-z0-9._~+/=-]*) die "ADMIN_TOKEN may only contain letters, digits and . _ ~ + / = -" ;;
esac

# Published beyond loopback with the admin calls open to anyone: refuse, and say why.
# CANARY_TOOLS_BIND counts too: the controller's port takes admin calls.
for bind in "${CANARY_BIND:-127.0.0.1}" "${CANARY_TOOLS_BIND:-127.0.0.1}"; do
    case $bind in
        127.*|localhost|::1|\[::1\]) ;;
        *) [ -n "$ADMIN_TOKEN" ] || die "refusing to start: ports are published on $bind (beyond loopback) and ADMIN_TOKEN is not set, so anyone who can reach them could change the rollout. Set ADMIN_TOKEN, or bind to 127.0.0.1 (CANARY_BIND, CANARY_TOOLS_BIND)." ;;
    esac
done
if [ "${1:-}" = "check" ]; then
    log "edge published on ${CANARY_BIND:-127.0.0.1}, admin token $([ -n "$ADMIN_TOKEN" ] && echo set || echo 'not set (loopback only)'): ok"
    exit 0
fi

router_list=$(printf '%s' "$ROUTER_UPSTREAM" | tr ',' ' ')
[ -n "$router_list" ] || die "ROUTER_UPSTREAM is empty"
for upstream in $router_list $CONTROLLER_UPSTREAM; do
    case $upstream in
        *:*[!0-9]*|*[!A-Za-z0-9.:-]*|*:|:*) die "upstream must be host:port, got '$upstream'" ;;
        *:*) ;;
        *) die "upstream must be host:port, got '$upstream'" ;;
    esac
done

resolver=${NGINX_RESOLVER:-}
if [ -z "$resolver" ] && [ -r /etc/resolv.conf ]; then
    resolver=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
fi
resolver=${resolver:-127.0.0.11}
case $resolver in
    *:*) case $resolver in \[*) ;; *) resolver="[$resolver]" ;; esac ;;  # IPv6 needs brackets
esac

servers=""
for upstream in $router_list; do
    line="        server $upstream max_fails=1 fail_timeout=5s;"
    if [ -z "$servers" ]; then servers=$line; else servers="$servers
$line"; fi
done

if [ -n "${NGINX_USER:-}" ]; then NGX_USER_DIRECTIVE="user ${NGINX_USER};"; else NGX_USER_DIRECTIVE="# workers run as this user"; fi
if [ -n "$ADMIN_TOKEN" ]; then NGX_ADMIN_EXPECTED="on:Bearer $ADMIN_TOKEN"; else NGX_ADMIN_EXPECTED="off"; fi
NGX_WORKER_PROCESSES=${NGINX_WORKER_PROCESSES:-auto}
NGX_ERROR_LOG=${NGINX_ERROR_LOG:-stderr}
NGX_ACCESS_LOG=${NGINX_ACCESS_LOG:-/dev/stdout}
NGX_RESOLVER_DIRECTIVE="resolver $resolver valid=5s ipv6=off;
    resolver_timeout 2s;"
NGX_ROUTER_SERVERS=$servers
NGX_LISTEN_HOST=${NGINX_LISTEN_HOST:-0.0.0.0}
NGX_PUBLIC_PORT=${NGINX_PUBLIC_PORT:-8080}
NGX_CONTROLLER_UPSTREAM=$CONTROLLER_UPSTREAM
export NGX_USER_DIRECTIVE NGX_ADMIN_EXPECTED NGX_WORKER_PROCESSES NGX_ERROR_LOG NGX_ACCESS_LOG \
    NGX_RESOLVER_DIRECTIVE NGX_ROUTER_SERVERS NGX_LISTEN_HOST NGX_PUBLIC_PORT \
    NGX_CONTROLLER_UPSTREAM

# Must name every placeholder of the template (a unit test checks); nginx's own $variables
# are left alone because envsubst only replaces the names listed here.
NGX_VARS='${NGX_USER_DIRECTIVE} ${NGX_ADMIN_EXPECTED} ${NGX_WORKER_PROCESSES} ${NGX_ERROR_LOG}
${NGX_ACCESS_LOG} ${NGX_RESOLVER_DIRECTIVE} ${NGX_ROUTER_SERVERS} ${NGX_LISTEN_HOST}
${NGX_PUBLIC_PORT} ${NGX_CONTROLLER_UPSTREAM}'

command -v envsubst >/dev/null 2>&1 || die "envsubst not found (Debian package gettext-base)"

if [ "${1:-}" = "render" ]; then
    envsubst "$NGX_VARS" < "$TEMPLATE"
    exit 0
fi

is_address() {  # IPv4 literal or bracketed IPv6
    case $1 in \[*) return 0 ;; *[!0-9.]*) return 1 ;; *) return 0 ;; esac
}

router_addresses() {  # sorted addresses of every router upstream, one line
    for upstream in $router_list; do
        host=${upstream%:*}
        if is_address "$host"; then echo "$host"; else getent ahostsv4 "$host" 2>/dev/null | awk '{ print $1 }'; fi
    done | sort -u | tr '\n' ' '
}

# nginx refuses to start when an upstream name does not resolve: wait for the routers' DNS.
if command -v getent >/dev/null 2>&1; then
    waited=0
    while [ -z "$(router_addresses)" ] && [ "$waited" -lt "$WAIT_DNS_S" ]; do
        [ "$waited" -eq 0 ] && log "waiting for $ROUTER_UPSTREAM to resolve"
        sleep 1; waited=$((waited + 1))
    done
fi

mkdir -p "$RUN_DIR"
envsubst "$NGX_VARS" < "$TEMPLATE" > "$RUN_DIR/nginx.conf"
set -- nginx -p "$RUN_DIR/" -c "$RUN_DIR/nginx.conf"

# Scaling `router` changes the addresses behind its name; an upstream block resolves names only at
# (re)load, so reload nginx (graceful: in-flight requests finish) whenever the set changes.
if [ "$DNS_WATCH_S" != "0" ] && command -v getent >/dev/null 2>&1; then
    (
        known=$(router_addresses)
        while sleep "$DNS_WATCH_S"; do
            now=$(router_addresses)
            if [ -n "$now" ] && [ "$now" != "$known" ]; then
                log "router addresses changed: [$known] -> [$now]; reloading"
                if "$@" -s reload; then known=$now; fi
            fi
        done
    ) &
fi

log "starting nginx: edge :$NGX_PUBLIC_PORT, routers [$ROUTER_UPSTREAM], admin auth $([ -n "$ADMIN_TOKEN" ] && echo on || echo off)"
exec "$@"
