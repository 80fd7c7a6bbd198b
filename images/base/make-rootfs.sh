#!/usr/bin/env bash
# Builds the minimal Debian root filesystem every offline image starts FROM, as a tarball in the cache.
# Runs as root (debootstrap needs it). Usage: make-rootfs.sh SUITE MIRROR OUT_TARBALL
set -euo pipefail
suite=$1 mirror=$2 out=$3
[ -s "$out" ] && exit 0
if ! command -v debootstrap >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
dir=$(mktemp -d /var/tmp/kaizenity-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "base: debootstrap --variant=minbase $suite (about a minute)" >&2
debootstrap --variant=minbase --include=ca-certificates "$suite" "$dir" "$mirror" >/dev/null
cat >"$dir/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SOURCES
# Image hygiene, as Debian's official docker images do: no docs/man pages/caches, no apt lists left behind.
cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-minimal" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
echo 'APT::Install-Recommends "false"; APT::Install-Suggests "false";' >"$dir/etc/apt/apt.conf.d/99-no-recommends"
find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/* \
    "$dir"/var/log/*.log "$dir"/tmp/*
mkdir -p "$(dirname "$out")"
tar -C "$dir" --numeric-owner -czf "$out.tmp" . && mv "$out.tmp" "$out"
