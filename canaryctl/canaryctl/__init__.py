"""canaryctl: the seed lab's send_requests.py as a command, plus the controller's verbs."""

__version__ = "0.1.0"
