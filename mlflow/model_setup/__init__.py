"""One-shot job: train the sentiment model versions and register them in MLflow."""
