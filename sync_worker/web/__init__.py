"""The worker's own HTTP surface: health, readiness, Prometheus metrics and vendor webhooks."""
