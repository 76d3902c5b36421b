"""What one worker holds: settings, the state follower, backend sessions,
the request-id signer, the labelled-id store and the shadow pool."""

from __future__ import annotations

import logging
import secrets

import requests

from canary_common.registry import RegistryClient
from canary_router import metrics
from canary_router.config import Settings
from canary_router.control.state import StateFollower
from canary_router.datapath.backends import Backends
from canary_router.datapath.ejection import Ejector
from canary_router.datapath.shadow import ShadowPool, shadow_percentage
from canary_router.datapath.split import CANARY, PRODUCTION
from canary_router.labels.dedupe import LabelledSet
from canary_router.labels.ids import IdSigner

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        # The state is read only: the controller writes it (admin calls are forwarded to it).
        self.follower = StateFollower(
            RegistryClient(settings.tracking_uri, settings.model_name, timeout=min(2.0, settings.state_poll_s * 2)),
            poll_s=settings.state_poll_s,
            fail_closed_after_s=settings.fail_closed_after_s,
            default_weight=settings.default_canary_percentage,
        )
        urls = {PRODUCTION: settings.production_url, CANARY: settings.canary_url}
        self.backends = Backends(
            urls,
            timeout_s=settings.backend_timeout_s,
            pool_size=settings.backend_pool_size,
            connect_timeout_s=settings.backend_connect_timeout_s,
        )
        # Its own timeout: a slow canary must not hold shadow threads as long as live calls may.
        self.shadow = ShadowPool(
            Backends(
                urls,
                timeout_s=settings.shadow_timeout_s,
                pool_size=1,
                connect_timeout_s=settings.backend_connect_timeout_s,
            ),
            workers=settings.shadow_workers,
            queue_max=settings.shadow_queue_max,
        )
        self.ejectors = {
            arm: Ejector(
                self._ready_probe(url),
                arm,
                consecutive=settings.outlier_consecutive_failures,
                base_s=settings.outlier_base_ejection_s,
                max_s=settings.outlier_max_ejection_s,
            )
            for arm, url in urls.items()
        }
        self._ejection_rollout = None  # the rollout the canary's ejector last judged
        secret = settings.feedback_secret
        self.secret_generated = not secret
        if not secret:
            secret = secrets.token_hex(32)
            log.warning(
                "FEEDBACK_SECRET is not set: request ids are signed with a secret of this process "
                "only, so POST /feedback works only for ids issued by this same process"
            )
        self.signer = IdSigner(secret, ttl_s=settings.feedback_ttl_s)
        self.labelled = LabelledSet(settings.feedback_store_dir or None, settings.feedback_dedupe_max)
        self.follower.on_publish = self._publish_shadow

    def canary_ejector(self, state) -> Ejector:
        """The canary's ejector; a new rollout starts with the canary in, since an ejection of
        the previous one (a server restarted since, a version replaced) is not its evidence."""
        rollout = state.rollout if state is not None else None
        if rollout != self._ejection_rollout:
            self._ejection_rollout = rollout
            self.ejectors[CANARY].reset()
        return self.ejectors[CANARY]

    def _ready_probe(self, url: str):
        """The ejection probe: the model server answers its readiness check."""

        def ready() -> bool:
            try:
                resp = requests.get(url + "/ready", timeout=self.settings.outlier_probe_timeout_s)
            except requests.RequestException:
                return False
            return resp.status_code == 200

        return ready

    def _publish_shadow(self) -> None:
        metrics.SHADOW_RATIO.set(self.shadow_share(self.follower.state, self.follower.effective_weight()) / 100.0)

    def start(self, first_read: bool = False) -> None:
        """Called in each worker after the fork (gunicorn post_worker_init, or the first request)."""
        if first_read and not self.follower.ready:
            self.follower.refresh()
        self.follower.start()

    def shadow_share(self, state, weight: float) -> float:
        """Percent of production-served requests to copy to the canary now (see shadow.py)."""
        if (
            state is None
            or weight > 0
            or not state.canary_version
            or self.follower.fail_closed
            or state.phase == "rolled_back"
        ):
            return 0.0
        return shadow_percentage(state)

    def state_dict(self) -> dict:
        state = self.follower.state
        out = (
            state.as_dict()
            if state
            else {
                "production_version": None,
                "canary_version": None,
                "canary_percentage": None,
                "mode": None,
                "phase": None,
            }
        )
        out["canary_percentage"] = self.follower.effective_weight()
        out["registry_canary_percentage"] = state.weight if state else None
        out["fail_closed"] = self.follower.fail_closed
        age = self.follower.state_age_s
        out["state_age_s"] = None if age is None else round(age, 3)
        out["state_error"] = self.follower.last_error or None  # why the last read failed, if it did
        out["shadow_percentage"] = shadow_percentage(state)
        out["shadow_active"] = self.shadow_share(state, self.follower.effective_weight()) > 0
        return out
