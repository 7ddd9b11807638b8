#!/usr/bin/env bash
# Let the engine build and run linux/arm64 images on this amd64 machine, for the multi-platform
# tests: QEMU user emulation (Debian's qemu-user-static, registered with binfmt_misc's F flag, so
# containers need no emulator inside) and a local arm64 Python base image.
#
#   eval "$(scripts/engine.sh)"; eval "$(scripts/arm64.sh)"   # exports TESTDOCK_BASE_IMAGE_ARM64
#
# No registry is reachable here: the base image is made with debootstrap (its second stage runs
# under emulation: about 3 minutes, once per machine). `docker import --platform` is ignored by
# Docker 20.10 (moby/moby#42813: the image would say amd64), so the tree goes in through a
# BuildKit build FROM scratch, which labels it arm64. Progress on stderr; idempotent.
set -euo pipefail
STATE_DIR="${TESTDOCK_ENGINE_DIR:-/var/lib/testdock-engine}"
BASE_IMAGE="${TESTDOCK_BASE_IMAGE:-testdock-local/python:3.11-bookworm}"
ARM64_IMAGE="${TESTDOCK_BASE_IMAGE_ARM64:-$BASE_IMAGE-arm64}"
CA_BUNDLE="${TESTDOCK_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
DEBIAN_MIRROR="${TESTDOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKER=/usr/bin/docker

log() { echo "arm64: $*" >&2; }
die() { echo "arm64: error: $*" >&2; exit 1; }

emulation_works() {
    grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
        && grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64
}

enable_emulation() {
    emulation_works && return 0
    [ "$(id -u)" -eq 0 ] || die "arm64 emulation is not set up and setting it up needs root"
    if ! [ -x /usr/bin/qemu-aarch64-static ] || ! command -v update-binfmts >/dev/null; then
        log "installing qemu-user-static and binfmt-support (apt)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends qemu-user-static binfmt-support >&2 \
            || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends \
                     qemu-user-static binfmt-support >&2; }
    fi
    # no init system runs the package's registration here; update-binfmts mounts binfmt_misc too
    update-binfmts --enable qemu-aarch64 >&2 || true
    emulation_works || die "qemu-aarch64 is not registered with the F flag in /proc/sys/fs/binfmt_misc"
}

build_base_image() {
    "$DOCKER" image inspect "$ARM64_IMAGE" >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] || die "base image $ARM64_IMAGE is missing and debootstrap needs root"
    command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/engine.sh installs it)"
    work="$STATE_DIR/arm64.$$"  # global: the EXIT trap runs after this function has returned
    rm -rf "$work"
    mkdir -p "$work/context"
    trap 'rm -rf "$work"' EXIT
    log "building base image $ARM64_IMAGE with debootstrap under emulation (about 3 minutes, once per machine)"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$work/rootfs" "$DEBIAN_MIRROR" >"$STATE_DIR/debootstrap-arm64.log" 2>&1 \
        || { tail -20 "$STATE_DIR/debootstrap-arm64.log" >&2; die "debootstrap failed (log: $STATE_DIR/debootstrap-arm64.log)"; }
    if [ -f "$CA_BUNDLE" ]; then
        cp "$CA_BUNDLE" "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
    fi
    rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/*
    tar -C "$work/rootfs" -cf "$work/context/rootfs.tar" .
    cat >"$work/context/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
EOF
    DOCKER_BUILDKIT=1 "$DOCKER" build --platform linux/arm64 --network host --quiet \
        --tag "$ARM64_IMAGE" "$work/context" >&2
    [ "$("$DOCKER" image inspect -f '{{.Architecture}}' "$ARM64_IMAGE")" = arm64 ] \
        || die "$ARM64_IMAGE was built but does not say arm64"
}

enable_emulation
build_base_image
echo "export TESTDOCK_BASE_IMAGE_ARM64=$ARM64_IMAGE"
