"""gunicorn entry point: one worker owns the control loop (see gunicorn.conf.py)."""

import logging
import sys

from .analysis.config import ConfigError
from .app import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    app = create_app()
except ConfigError as exc:
    # A wrong configuration stops the controller with a message naming the field.
    print(f"controller configuration error: {exc}", file=sys.stderr)
    sys.exit(4)
