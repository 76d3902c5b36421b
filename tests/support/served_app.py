"""A Flask stand-in served on a free loopback port for one test module (`with Stand() as s:`)."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server


class ServedApp:
    """Subclasses build their Flask `app` and call `self.serve(app)` at the end of __init__."""

    def serve(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)
