#!/usr/bin/env bash
# Builds the offline images (kaizenity-local/*) from Debian packages and npm: no container registry needed.
# Each image carries the hash of its recipe (label io.kaizenity.recipe); an image whose recipe is unchanged is
# skipped, so a warm `make images` takes a second. Expensive intermediate results (the Debian root filesystem, the
# n8n npm install) are cached in $KAIZENITY_CACHE (default ~/.cache/kaizenity).
#
# Usage: images/build.sh [--force] [postgres|caddy|redis|n8n|monitoring ...]     (default: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=images/versions.env
. "$here/versions.env"
cache=${KAIZENITY_CACHE:-$HOME/.cache/kaizenity}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
prefix=$LOCAL_IMAGE_PREFIX
force=false
targets=()
for arg in "$@"; do
    case "$arg" in
        --force) force=true ;;
        postgres|caddy|redis|n8n|monitoring) targets+=("$arg") ;;
        *) echo "images/build.sh: unknown argument '$arg'. Use: [--force] [postgres|caddy|redis|n8n|monitoring ...]" >&2; exit 2 ;;
    esac
done
[ ${#targets[@]} -eq 0 ] && targets=(postgres caddy redis n8n monitoring)

# Debian's client drives the daemon's built-in BuildKit; a newer client on PATH may lack the buildx plugin.
docker_cli=docker
[ -x /usr/bin/docker ] && docker_cli=/usr/bin/docker
export DOCKER_BUILDKIT=1

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
say() { echo "images: $*"; }

recipe_hash() {  # hash of every file that defines an image (the base's recipe included) and the pinned versions
    # monitoring's image carries the health probes (the exporter) and what they read (migrations, workflow
    # definitions, the secret registry those import): their source is part of its recipe.
    (cd "$here" && { cat versions.env base/make-rootfs.sh; for dir in "$@"; do cat "$dir"/*
        if [ "$dir" = monitoring ]; then cat ../healthchecks/*.py ../healthchecks/formats/*.py ../bootstrap/*.py \
            ../bootstrap/migrations/* ../workflows/*.py ../workflows/definitions/* ../infra/*.py; fi; done; }) \
        | sha256sum | cut -c1-16
}

current_recipe() {
    $docker_cli image inspect --format '{{ index .Config.Labels "io.kaizenity.recipe" }}' "$1" 2>/dev/null || true
}

up_to_date() {  # image recipe
    ! $force && [ "$(current_recipe "$1")" = "$2" ]
}

base_image="$prefix/debian:$DEBIAN_SUITE"
ensure_base() {
    local recipe tarball
    recipe=$(recipe_hash)
    up_to_date "$base_image" "$recipe" && return 0
    tarball="$cache/rootfs-$DEBIAN_SUITE-$recipe.tar.gz"
    $force && rm -f "$tarball"
    as_root bash "$here/base/make-rootfs.sh" "$DEBIAN_SUITE" "$mirror" "$tarball"
    say "importing $base_image"
    $docker_cli import --change "LABEL io.kaizenity.recipe=$recipe" --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$tarball" "$base_image" >/dev/null
}

build() {  # name tag context [extra docker build args...]
    local name=$1 tag=$2 context=$3; shift 3
    local recipe started
    recipe=$(recipe_hash "$name")
    if up_to_date "$tag" "$recipe"; then say "$tag is up to date"; return 0; fi
    say "building $tag"
    started=$(date +%s)
    $docker_cli build --quiet -f "$here/$name/Dockerfile" --build-arg "BASE=$base_image" \
        --label "io.kaizenity.recipe=$recipe" --label "org.opencontainers.image.source=kaizenity-ops-bundle/images/$name" \
        -t "$tag" "$@" "$context" >/dev/null
    say "built $tag in $(( $(date +%s) - started ))s ($($docker_cli image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec))"
}

build_n8n() {
    local tag="$prefix/n8n:$N8N_VERSION" recipe app
    recipe=$(recipe_hash n8n)
    if up_to_date "$tag" "$recipe"; then say "$tag is up to date"; return 0; fi
    app=$(bash "$here/n8n/prepare-app.sh" "$cache" "$N8N_VERSION" "$NODE_VERSION")
    cp "$here/n8n/docker-entrypoint.sh" "$app/docker-entrypoint.sh"
    build n8n "$tag" "$app"
}

build_monitoring() {  # the health exporter runs the repository's probes: they join the build context
    local context
    context=$(mktemp -d)
    cp "$here/monitoring/Dockerfile" "$context/"
    for package in healthchecks bootstrap workflows infra; do cp -r "$here/../$package" "$context/$package"; done
    find "$context" -name __pycache__ -prune -exec rm -rf {} +
    build monitoring "$prefix/monitoring:1" "$context"
    rm -rf "$context"
}

mkdir -p "$cache"
ensure_base
for target in "${targets[@]}"; do
    case "$target" in
        postgres) build postgres "$prefix/postgres:$POSTGRES_MAJOR" "$here/postgres" --build-arg "POSTGRES_MAJOR=$POSTGRES_MAJOR" ;;
        caddy) build caddy "$prefix/caddy:2" "$here/caddy" ;;
        redis) build redis "$prefix/redis:8" "$here/redis" ;;
        n8n) build_n8n ;;
        monitoring) build_monitoring ;;
    esac
done
# Predecessors of rebuilt images, untagged now: remove them (images a container still uses are kept).
$docker_cli image prune -f --filter label=io.kaizenity.recipe >/dev/null
