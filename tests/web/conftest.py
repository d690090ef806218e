"""Fixtures of the web tests live in worker_app (a plain module, so tests can import its helpers)."""

from worker_app import with_worker, worker_env

__all__ = ["with_worker", "worker_env"]
