"""Control: following the rollout state, the admin commands, and the other router replicas."""
