"""Benchmarks, run by hand (``make bench`` or ``python -m benchmarks.<name>``); results in docs/benchmarks.md."""
