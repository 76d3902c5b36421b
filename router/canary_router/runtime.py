"""What one worker holds: settings, the state follower, backend sessions, the registry client."""
from __future__ import annotations

from canary_common.registry import RegistryClient

from .backends import Backends
from .config import Settings
from .split import CANARY, PRODUCTION
from .state import StateFollower


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        # Separate clients: the poll thread and request threads must not share a Session.
        self.registry = RegistryClient(settings.tracking_uri, settings.model_name, timeout=2.0)
        self.follower = StateFollower(
            RegistryClient(settings.tracking_uri, settings.model_name, timeout=min(2.0, settings.state_poll_s * 2)),
            poll_s=settings.state_poll_s, fail_closed_after_s=settings.fail_closed_after_s,
            default_weight=settings.default_canary_percentage)
        self.backends = Backends({PRODUCTION: settings.production_url, CANARY: settings.canary_url},
                                 timeout_s=settings.backend_timeout_s)

    def start(self, first_read: bool = False) -> None:
        """Called in each worker after the fork (gunicorn post_worker_init, or the first request)."""
        if first_read and not self.follower.ready:
            self.follower.refresh()
        self.follower.start()

    def state_dict(self) -> dict:
        state = self.follower.state
        out = state.as_dict() if state else {"production_version": None, "canary_version": None,
                                              "canary_percentage": None, "mode": None, "phase": None}
        out["canary_percentage"] = self.follower.effective_weight()
        out["registry_canary_percentage"] = state.weight if state else None
        out["fail_closed"] = self.follower.fail_closed
        age = self.follower.state_age_s
        out["state_age_s"] = None if age is None else round(age, 3)
        return out
