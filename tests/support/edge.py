"""The nginx edge's config for process mode, rendered by nginx/entrypoint.sh itself (`render`), the
one renderer, as the image does. Everything nginx writes (pid, temp dirs, logs) goes under the
`-p` prefix, so it runs as an ordinary user:

    conf = render(["127.0.0.1:41001", "127.0.0.1:41002"], "127.0.0.1:41003", public_port=41004, admin_token="s3cret")
    (prefix / "nginx.conf").write_text(conf)
    nginx -p <prefix>/ -c <prefix>/nginx.conf        # foreground (`daemon off;` is in the file)
"""

from __future__ import annotations

import os
import subprocess

from support.procs import ROOT

ENTRYPOINT = ROOT / "nginx" / "entrypoint.sh"


class RenderRefused(ValueError):
    """The entrypoint refused the settings; the message is its own."""


def render(
    router_upstreams: list[str],
    controller_upstream: str,
    public_port: int,
    admin_token: str = "",
    *,
    resolver: str | None = None,
    listen_host: str = "127.0.0.1",
    access_log: str = "access.log",
    error_log: str = "error.log",
    worker_processes: str = "1",
) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ROUTER_UPSTREAM": ",".join(router_upstreams),
        "CONTROLLER_UPSTREAM": controller_upstream,
        "ADMIN_TOKEN": admin_token,
        "NGINX_PUBLIC_PORT": str(int(public_port)),
        "NGINX_LISTEN_HOST": listen_host,
        "NGINX_ACCESS_LOG": access_log,
        "NGINX_ERROR_LOG": error_log,
        "NGINX_WORKER_PROCESSES": str(worker_processes),
    }
    if resolver:
        env["NGINX_RESOLVER"] = resolver
    if os.geteuid() == 0:
        # A root master would switch workers to `nobody`, who cannot enter a private prefix
        # (pytest's tmp dirs are 0700) to buffer request bodies.
        env["NGINX_USER"] = "root"
    out = subprocess.run(["sh", str(ENTRYPOINT), "render"], env=env, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RenderRefused(out.stderr.strip())
    return out.stdout
