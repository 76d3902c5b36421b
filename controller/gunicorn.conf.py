"""gunicorn settings for the controller: exactly one worker, since it owns the control loop."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = 1
worker_class = "gthread"
threads = 4
timeout = 60
graceful_timeout = 10
accesslog = "-" if os.environ.get("ACCESS_LOG", "0") == "1" else None
errorlog = "-"
# gunicorn 26 opens a control socket at one fixed path by default: several servers on one
# host would clash.
control_socket_disable = True
wsgi_app = "canary_controller.wsgi:app"
