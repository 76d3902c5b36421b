"""The router replicas to ask for /stats and /reset (ROUTER_PEERS)."""

from __future__ import annotations

import socket


def resolve_peers(spec: str, resolver=socket.getaddrinfo) -> list[str] | None:
    """Base URLs of every replica, or None for "just this one".

    `http://a:8000,http://b:8000` is taken as is; `dns:router:8000` is the name's A records
    (compose gives one per replica), each as http://ip:8000 — resolved on every call, so
    replicas that come and go are followed.
    """
    spec = (spec or "").strip()
    if not spec:
        return None
    if spec.startswith("dns:"):
        try:
            _, name, port = spec.split(":")
            port_n = int(port)
        except ValueError:
            raise ValueError(f"ROUTER_PEERS must look like dns:<name>:<port>, got {spec!r}") from None
        infos = resolver(name, port_n, socket.AF_INET, socket.SOCK_STREAM)
        ips = sorted({info[4][0] for info in infos})
        return [f"http://{ip}:{port_n}" for ip in ips]
    return [p.strip().rstrip("/") for p in spec.split(",") if p.strip()]
