"""Render nginx/nginx.conf.template for process mode (tests), the way entrypoint.sh does in Docker.

    conf = render(["127.0.0.1:41001", "127.0.0.1:41002"], "127.0.0.1:41003",
                  public_port=41004, admin_token="s3cret", resolver=None)
    (prefix / "nginx.conf").write_text(conf)
    nginx -p <prefix>/ -c <prefix>/nginx.conf        # foreground (`daemon off;` is in the file)

Everything nginx writes (pid, temp dirs, error.log, access.log) goes under the prefix, so it runs
as an ordinary user. Only `${NGX_*}` placeholders are replaced, as `envsubst '<list>'` does.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"
PLACEHOLDER = re.compile(r"\$\{(NGX_[A-Z0-9_]+)\}")
# Characters that cannot end a quoted nginx string or start a variable.
TOKEN_OK = re.compile(r"^[A-Za-z0-9._~+/=-]*$")
HOSTPORT_OK = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$|^\[[0-9a-fA-F:]+\]:[0-9]{1,5}$")


def placeholders() -> set[str]:
    return set(PLACEHOLDER.findall(TEMPLATE.read_text()))


def fill(values: dict[str, str]) -> str:
    text = TEMPLATE.read_text()
    missing = placeholders() - set(values)
    if missing:
        raise ValueError(f"no value for {sorted(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def router_servers(upstreams: list[str]) -> str:
    # max_fails/fail_timeout: a replica that refused a connection is skipped for 5 s.
    return "\n".join(f"        server {u} max_fails=1 fail_timeout=5s;" for u in upstreams)


def admin_expected(token: str) -> str:
    return f"on:Bearer {token}" if token else "off"


def _check_hostport(value: str, what: str) -> None:
    if not HOSTPORT_OK.match(value):
        raise ValueError(f"{what} must be host:port, got {value!r}")


def _is_address(hostport: str) -> bool:
    host = hostport.rsplit(":", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def render(
    router_upstreams: list[str],
    controller_upstream: str,
    public_port: int,
    admin_token: str,
    resolver: str | None,
    *,
    listen_host: str = "127.0.0.1",
    access_log: str = "access.log",
    error_log: str = "error.log",
    worker_processes: str = "1",
) -> str:
    """A complete nginx.conf; log paths default to files under the `-p` prefix."""
    if not router_upstreams:
        raise ValueError("at least one router upstream is needed")
    for upstream in router_upstreams:
        _check_hostport(upstream, "router upstream")
    _check_hostport(controller_upstream, "controller upstream")
    if resolver is None and not _is_address(controller_upstream):
        # proxy_pass with a variable resolves host names at request time, which needs a resolver.
        raise ValueError("controller_upstream is a host name: pass resolver (e.g. '127.0.0.11')")
    if not TOKEN_OK.match(admin_token):
        raise ValueError("admin_token may only contain letters, digits and . _ ~ + / = -")
    return fill(
        {
            # A root master would switch workers to `nobody`, who cannot enter a private prefix
            # (pytest's tmp dirs are 0700) to buffer request bodies; as non-root it does not switch.
            "NGX_USER_DIRECTIVE": "user root;" if os.geteuid() == 0 else "# workers run as this user",
            "NGX_WORKER_PROCESSES": str(worker_processes),
            "NGX_ERROR_LOG": error_log,
            "NGX_ACCESS_LOG": access_log,
            "NGX_RESOLVER_DIRECTIVE": (
                f"resolver {resolver} valid=5s ipv6=off;\n    resolver_timeout 2s;"
                if resolver
                else "# no resolver: every upstream is an address"
            ),
            "NGX_ROUTER_SERVERS": router_servers(router_upstreams),
            "NGX_LISTEN_HOST": listen_host,
            "NGX_PUBLIC_PORT": str(int(public_port)),
            "NGX_ADMIN_EXPECTED": admin_expected(admin_token),
            "NGX_CONTROLLER_UPSTREAM": controller_upstream,
        }
    )
