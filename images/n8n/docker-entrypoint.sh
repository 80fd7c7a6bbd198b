#!/bin/sh
# As the official image: arguments are n8n sub-commands (`worker`, `webhook`, ...); none starts the main process.
if [ "$#" -gt 0 ]; then exec n8n "$@"; else exec n8n; fi
