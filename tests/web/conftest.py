"""The web tests' fixtures; their helpers live in tests.web.worker_app."""

from tests.web.worker_app import with_worker, worker_env

__all__ = ["with_worker", "worker_env"]
