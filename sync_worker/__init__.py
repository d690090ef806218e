"""sync-worker: keeps e-mail marketing consent provable and the same in every connected system."""

__version__ = "0.1.0"
