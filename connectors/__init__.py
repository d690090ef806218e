"""Connectors: how the worker reads and changes each vendor's system, and a faithful sandbox of each."""
