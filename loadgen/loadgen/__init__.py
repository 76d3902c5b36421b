"""loadgen: labelled open-loop traffic against the Canary stack's /predict."""
