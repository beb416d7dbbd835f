#!/usr/bin/env bash
# The base image of the reference node, built with no registry: a minimal Debian tree from
# debootstrap (from the mirror apt already uses), imported with `docker import`. Skipped when the
# image exists. Usage: images/build-base.sh [IMAGE]   (default chaos-harness/base:bookworm)
set -euo pipefail
image="${1:-chaos-harness/base:bookworm}"
suite=bookworm
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image: present"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "debootstrap is needed to build $image: apt-get install debootstrap" >&2; exit 3; }
[ "$(id -u)" -eq 0 ] || { echo "building $image needs root (debootstrap)" >&2; exit 3; }
mirror="$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
[ -n "$mirror" ] || mirror="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
[ -n "$mirror" ] || { echo "no Debian mirror found in /etc/apt/sources.list*" >&2; exit 3; }
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
echo "base image $image: debootstrap $suite from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,redis-server \
  "$suite" "$tree" "$mirror" >"$tree.log" 2>&1 || { tail -20 "$tree.log" >&2; rm -f "$tree.log"; exit 3; }
rm -f "$tree.log"
rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/* \
  "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/usr/share/locale/*
tar --numeric-owner -C "$tree" -c . \
  | docker import --change 'CMD ["python3"]' \
      --change 'LABEL org.opencontainers.image.title="chaos-harness base (debootstrap)"' - "$image"
