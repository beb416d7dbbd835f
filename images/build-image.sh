#!/usr/bin/env bash
# `make image`: the reference node image, with no registry and no package index.
#   1. the base image (images/build-base.sh, debootstrap) when absent;
#   2. a wheelhouse of the server's dependencies pinned to the tested .venv (pip download on the
#      host: pip inside a build cannot verify this machine's TLS), re-made only when the pins change;
#   3. the node image, labelled with the digest of the sources it holds (the harness compares it
#      with its own sources and says when the image is stale). Unchanged: ~0.2 s (layer cache).
# Usage: images/build-image.sh PYTHON TOXIPROXY_SERVER [IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
python="$1"; toxiproxy="$2"; image="${3:-chaos-harness/node:latest}"
docker info >/dev/null 2>&1 || {
  echo "no Docker engine answers: start one (dockerd --bridge=none --iptables=false --ip-forward=false &) or see the README's Docker section" >&2
  exit 3; }
images/build-base.sh
out=build/image
mkdir -p "$out/wheels" "$out/bin"
pins="$("$python" -m pip freeze --all 2>/dev/null \
  | grep -iE '^(trio|wsproto|h11|attrs|sortedcontainers|idna|outcome|sniffio|orjson)==' | sort)"
if [ "$pins" != "$(cat "$out/wheels/requirements.txt" 2>/dev/null)" ]; then
  rm -rf "$out/wheels" && mkdir -p "$out/wheels"
  printf '%s\n' "$pins" >"$out/wheels/requirements.txt.new"
  "$python" -m pip download --quiet --only-binary=:all: --no-deps -d "$out/wheels" \
    -r "$out/wheels/requirements.txt.new"
  mv "$out/wheels/requirements.txt.new" "$out/wheels/requirements.txt"
fi
cmp -s "$toxiproxy" "$out/bin/toxiproxy-server" || cp "$toxiproxy" "$out/bin/toxiproxy-server"
digest="$("$python" -c "from harness.cluster._image import digest; print(digest())")"
log="$out/build.log"
DOCKER_BUILDKIT=0 docker build -f images/node.Dockerfile \
  --label "chaos-harness.digest=$digest" -t "$image" . >"$log" 2>&1 || {
  tail -30 "$log" >&2; echo "node image $image: build failed; see $log" >&2; exit 3; }
echo "node image $image: built (sources $digest)"
