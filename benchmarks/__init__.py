"""Benchmarks, run by hand (``make bench``); results go to docs/benchmarks.md."""
