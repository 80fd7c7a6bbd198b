"""Benchmark: full migration apply on an empty database, and the no-op re-run (goal: under 1 s).

    .venv/bin/python benchmarks/migrations_bench.py [--runs 5]

Starts a throw-away PostgreSQL container (the offline image), creates a fresh database per run, and reports the
median of each measurement. The container is removed at the end.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

import psycopg

from bootstrap.runner import apply_migrations
from infra.container_runner import configure_testcontainers
from infra.docker_engine import docker_client
from infra.host_ports import free_port
from infra.versions import offline_images


def wait_for(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    configure_testcontainers()
    password, port = secrets.token_urlsafe(16), free_port()
    container = docker_client().containers.run(
        offline_images()["postgres"],
        detach=True,
        environment={"POSTGRES_PASSWORD": password},
        ports={"5432/tcp": ("127.0.0.1", port)},
        name=f"kzt-bench-pg-{secrets.token_hex(3)}",
    )
    try:
        admin = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
        wait_for(admin)
        full, noop = [], []
        for run in range(runs):
            name = f"bench_{run}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            url = admin.rsplit("/", 1)[0] + "/" + name
            started = time.perf_counter()
            applied = apply_migrations(url)
            full.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert apply_migrations(url) == []
            noop.append(time.perf_counter() - started)
            print(
                f"run {run + 1}: full apply of {len(applied)} migrations {full[-1] * 1000:.0f} ms; "
                f"no-op re-run {noop[-1] * 1000:.0f} ms"
            )
        print(f"median full apply: {statistics.median(full) * 1000:.0f} ms")
        print(f"median no-op re-run: {statistics.median(noop) * 1000:.0f} ms (goal < 1000 ms)")
    finally:
        container.remove(force=True, v=True)


if __name__ == "__main__":
    main()
