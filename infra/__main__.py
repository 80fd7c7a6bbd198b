"""Entry point that `pulumi up` runs (Pulumi.yaml: `main: infra/`)."""

from infra.pulumi_program import deploy

deploy()
