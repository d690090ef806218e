"""A worker process that takes a connector lease: ``python lease_process.py URL NAME try|wait``.

``try``: prints ``held`` or ``busy``; holding, it keeps the lease until stdin closes (or it is killed), as a
replica in the middle of a sync would. ``wait``: prints ``busy`` if the lease is taken, then waits for
it and prints ``held``.
"""

from __future__ import annotations

import sys

from sync_worker.db import make_engine
from sync_worker.lease import build_leases

url, name, mode = sys.argv[1:4]
leases = build_leases(make_engine(url))
lease = leases.try_acquire(name)
if lease is None and mode == "wait":
    print("busy", flush=True)
    lease = leases.acquire(name, timeout=30)
print("held" if lease else "busy", flush=True)
if lease is not None and mode == "try":
    sys.stdin.read()
    lease.release()
