#!/usr/bin/env bash
# Build the service images the example's backend tests use (no registry here): PostgreSQL 15
# from the local base image and Debian's packages. Idempotent: an existing image is kept.
set -euo pipefail
cd "$(dirname "$0")"
base="${TESTDOCK_BASE_IMAGE:-testdock-local/python:3.11-bookworm}"
image="testdock-local/postgres:15"
if ! docker image inspect "$image" >/dev/null 2>&1; then
    echo "services: building $image" >&2
    # the legacy builder: no BuildKit client (buildx) is needed for this small image
    DOCKER_BUILDKIT=0 docker build --quiet --network host --build-arg "BASE_IMAGE=$base" \
        --tag "$image" --file services/postgres.Dockerfile services >/dev/null
fi
echo "$image"
