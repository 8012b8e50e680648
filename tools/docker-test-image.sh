#!/usr/bin/env bash
# Builds the docker backend's test image offline (no registry): a minimal Debian bookworm from
# Debian's own packages, imported as an image. Skips the build when the image already exists.
#   tools/docker-test-image.sh [IMAGE]      (default: solver-test/bookworm:latest)
set -euo pipefail
image="${1:-${SOLVER_TEST_DOCKER_IMAGE:-solver-test/bookworm:latest}}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="git,python3,python3-pytest,ca-certificates"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "docker image $image already exists"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "building $image with debootstrap ($mirror)"
debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; exit 1; }
tar -C "$work/rootfs" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
echo "built $image"
