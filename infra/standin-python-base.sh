#!/usr/bin/env bash
# A stand-in for the Dockerfile's base image, python:3.11-slim, on a machine that reaches
# Debian's mirror and PyPI but not Docker Hub (as the machines railwatch is developed on):
# Debian bookworm, which the slim image is built on, with Debian's Python 3.11 and pip, put in
# the local image store as docker.io/library/python:3.11-slim. A build with --pull=never then
# runs every line of the Dockerfile after FROM as written (infra/check-image.sh).
# Only for checking the Dockerfile: the real base has python.org's Python in /usr/local.
#
# Usage (as root): ENGINE=podman infra/standin-python-base.sh
set -euo pipefail

ENGINE=${ENGINE:-docker}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
TAG=docker.io/library/python:3.11-slim
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

debootstrap --variant=minbase --include=python3.11,python3-pip,python3-venv,ca-certificates \
  bookworm "$root" "$MIRROR"
rm -f "$root/usr/lib/python3.11/EXTERNALLY-MANAGED"  # the official image lets pip install
for name in python python3; do ln -sf /usr/bin/python3.11 "$root/usr/local/bin/$name"; done
ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | $ENGINE import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$TAG"
echo "stand-in base: $TAG ($($ENGINE run --rm "$TAG" python --version))"
