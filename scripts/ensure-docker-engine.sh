#!/usr/bin/env bash
# Makes sure a Docker engine answers. Installs Debian's docker.io when no engine is installed and starts dockerd
# when none is running. An engine that already answers is left exactly as it is: this script never stops, restarts
# or reconfigures a daemon it did not start.
set -euo pipefail

log=/var/log/kaizenity-dockerd.log

engine_answers() { docker info >/dev/null 2>&1; }

if engine_answers; then
    echo "docker engine: running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)), left alone"
    exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v dockerd >/dev/null 2>&1; then
    echo "docker engine: not installed; installing Debian's docker.io"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker.io iptables ca-certificates >/dev/null
fi

if [ -S /var/run/docker.sock ] && ! pgrep -x dockerd >/dev/null 2>&1; then
    as_root rm -f /var/run/docker.sock   # stale socket of a dead daemon
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "docker engine: starting dockerd (log: $log)"
    as_root sh -c "nohup dockerd >>'$log' 2>&1 &"
fi

for _ in $(seq 1 60); do
    if engine_answers; then
        echo "docker engine: ready ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 1
done
echo "docker engine: dockerd did not answer within 60 s. Cause: see the last lines of $log below." >&2
echo "Fix: resolve the error shown, then re-run 'make engine'." >&2
tail -n 20 "$log" >&2 || true
exit 1
