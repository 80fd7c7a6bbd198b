"""`python3 -m healthchecks ...` = `kaizenity health ...`: what the health exporter container runs
(`python3 -m healthchecks --serve :9840`), where the `kaizenity` CLI and its dependencies are not installed."""

from healthchecks.cli import health

health()
