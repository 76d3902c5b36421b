"""The read API: /stats, /metrics, the live page, the OpenAPI document, and errors as JSON."""
