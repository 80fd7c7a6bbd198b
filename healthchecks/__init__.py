"""Health probes for on-call: one module per probe kind, one uniform signature.

Every probe is ``probe(target, ctx) -> ProbeResult`` (see :mod:`healthchecks.result` and
:mod:`healthchecks.context`), in the manner of Prometheus blackbox_exporter's ``prober/`` package: the runner
does not need to know what a probe checks, only how long it may take. Nothing here imports httpx, psycopg or
rich at package import time, so ``kaizenity health --help`` stays fast.
"""
