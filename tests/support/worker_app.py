"""A tiny WSGI app to exercise the router's gunicorn worker: /slow?ms=N answers after N ms, any
other path echoes the body's length and names the worker's process."""

import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/slow":
        time.sleep(int(parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["0"])[0]) / 1000)
    out = f"ok {len(body)} pid {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]
