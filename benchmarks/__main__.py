"""``python -m benchmarks``: every benchmark, with its default size."""

from benchmarks import ingest

ingest.main()
