#!/usr/bin/env bash
# Give testdock's tests (and the demo) a real Docker engine and a local Python base image.
#
#   eval "$(scripts/engine.sh)"     # exports DOCKER_HOST and TESTDOCK_BASE_IMAGE
#
# - If an engine already answers (DOCKER_HOST or the default socket), it is used and nothing is started.
# - Otherwise (as root) Debian's docker.io and debootstrap are installed if missing and dockerd is
#   started with host-only networking and a fixed data root, so images survive restarts.
# - No registry is reachable here, so the base image is made with debootstrap and imported once,
#   with the host's CA bundle (TLS goes through a proxy with its own CA).
# Progress goes to stderr; only the export lines go to stdout. Idempotent, and fast when up.
set -euo pipefail

STATE_DIR="${TESTDOCK_ENGINE_DIR:-/var/lib/testdock-engine}"
RUN_DIR="${TESTDOCK_ENGINE_RUN:-/run/testdock-engine}"
SOCK="$RUN_DIR/docker.sock"
BASE_IMAGE="${TESTDOCK_BASE_IMAGE:-testdock-local/python:3.11-bookworm}"
CA_BUNDLE="${TESTDOCK_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
DEBIAN_MIRROR="${TESTDOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { echo "engine: $*" >&2; }
die() { echo "engine: error: $*" >&2; exit 1; }

client() {
    # Debian's client builds with BuildKit through DOCKER_BUILDKIT=1; a newer client without buildx cannot.
    if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker || true; fi
}

engine_answers() {
    local docker_bin
    docker_bin="$(client)"
    [ -n "$docker_bin" ] && timeout 10 "$docker_bin" info >/dev/null 2>&1
}

install_packages() {
    local missing=()
    [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
    [ -x /usr/bin/docker ] || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]}; install them or start a Docker engine"
    log "installing ${missing[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

start_dockerd() {
    [ "$(id -u)" -eq 0 ] || die "no Docker engine answers and starting one needs root"
    mkdir -p "$STATE_DIR/data" "$RUN_DIR/exec"
    local pidfile="$RUN_DIR/dockerd.pid"
    if [ -f "$pidfile" ]; then
        local pid
        pid="$(cat "$pidfile" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
            && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "dockerd" ]; then
            log "dockerd (pid $pid) is starting; waiting"
        else
            log "removing the stale pidfile of a dockerd that is gone"
            rm -f "$pidfile"
        fi
    fi
    if ! [ -f "$pidfile" ]; then
        log "starting dockerd (data root $STATE_DIR/data, socket $SOCK)"
        # BuildKit keeps every layer and cache mount of every build until told otherwise: sessions
        # of builds filled this machine's disk (69 GB). Kept to 20 GB, the oldest unused go first.
        printf '{"builder": {"gc": {"enabled": true, "defaultKeepStorage": "20GB"}}}\n' \
            >"$STATE_DIR/daemon.json"
        # No bridge: containers and builds use host networking; nothing may route to private ranges.
        nohup /usr/sbin/dockerd \
            --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
            --data-root "$STATE_DIR/data" --exec-root "$RUN_DIR/exec" \
            --pidfile "$pidfile" -H "unix://$SOCK" --config-file "$STATE_DIR/daemon.json" \
            >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
    fi
    for _ in $(seq 1 120); do
        if engine_answers; then return 0; fi
        sleep 0.5
    done
    tail -20 "$STATE_DIR/dockerd.log" >&2 || true
    die "dockerd did not answer within 60 s (log: $STATE_DIR/dockerd.log)"
}

build_base_image() {
    local docker_bin
    docker_bin="$(client)"
    if "$docker_bin" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
    [ "$(id -u)" -eq 0 ] || die "base image $BASE_IMAGE is missing and debootstrap needs root"
    mkdir -p "$STATE_DIR"
    local rootfs="$STATE_DIR/rootfs.$$"
    rm -rf "$rootfs"
    log "building base image $BASE_IMAGE with debootstrap (about a minute, once per machine)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" "$DEBIAN_MIRROR" >"$STATE_DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$STATE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $STATE_DIR/debootstrap.log)"; }
    if [ -f "$CA_BUNDLE" ]; then
        cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | "$docker_bin" import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["python3"]' \
        - "$BASE_IMAGE" >&2
    rm -rf "$rootfs"
}

main() {
    if engine_answers; then
        log "using the engine that answers at ${DOCKER_HOST:-the default socket}"
    else
        install_packages
        export DOCKER_HOST="unix://$SOCK"
        if ! engine_answers; then start_dockerd; fi
    fi
    install_packages_for_base=0
    if ! "$(client)" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        command -v debootstrap >/dev/null || install_packages_for_base=1
        [ "$install_packages_for_base" -eq 1 ] && install_packages
        build_base_image
    fi
    if [ -n "${DOCKER_HOST:-}" ]; then echo "export DOCKER_HOST=$DOCKER_HOST"; fi
    echo "export TESTDOCK_BASE_IMAGE=$BASE_IMAGE"
}

main "$@"
