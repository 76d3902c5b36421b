"""Puts every service's source folder on sys.path, as the images' PYTHONPATH does."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in ("common", "mlflow", "model-server", "router", "controller", "loadgen", "canaryctl", "tests"):
    path = str(ROOT / folder)
    if path not in sys.path:
        sys.path.insert(0, path)
