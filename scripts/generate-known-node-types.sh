#!/usr/bin/env bash
# Regenerates workflows/known_node_types.json: every node type (and type version) the pinned n8n really serves,
# read from a throw-away n8n container (SQLite) of the pinned image through GET /types/nodes.json. Fails loudly:
# a non-zero exit and nothing written when n8n does not start or serves an incomplete set.
# Run after changing N8N_VERSION in images/versions.env.
#   usage: scripts/generate-known-node-types.sh [IMAGE]     (default: the offline image of the pinned version)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m workflows.validation.generate_node_types "$@"
