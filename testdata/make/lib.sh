# Shared helpers for the testdata generators. Sourced, not run.
# Everything is written relative to the testdata/ directory that holds
# this make/ directory; scratch files go to $WORK (a fresh mktemp dir
# unless the caller sets WORK).

MAKE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTDATA=$(dirname "$MAKE_DIR")
: "${WORK:=$(mktemp -d -t flatten-testdata.XXXXXX)}"
export WORK
mkdir -p "$WORK"

# Fixed clock for everything we create ourselves (not for what Docker
# stamps on its own files).
export SOURCE_DATE_EPOCH=1700000000
export TZ=UTC LC_ALL=C

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (needs mknod, chown, docker)"; }

install_tools() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt-get update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Deterministic tar of a directory (GNU tar, numeric owners, sorted,
# xattrs kept).  usage: det_tar DIR OUT.tar
det_tar() {
    tar --sort=name --numeric-owner --xattrs --xattrs-include='*' \
        --format=pax --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        -C "$1" -cf "$2" .
}

# A private dockerd for the generators, its files named $1-* (socket $1.sock):
# Debian's docker.io, no networking, the first storage driver that works
# (overlay2, fuse-overlayfs, vfs). Sets DOCKER_HOST and DRIVER, defines `d`
# (the Debian docker client) and stops the daemon on exit.
# usage: docker_up "$WORK/docker"
docker_up() {
    DOCKER_PREFIX=$1
    # Debian's docker.io client; an unrelated newer CLI may sit earlier in PATH.
    DOCKER_BIN=/usr/bin/docker
    export DOCKER_HOST=unix://$DOCKER_PREFIX.sock
    export DOCKER_BUILDKIT=0   # classic builder: every RUN is an overlay2 diff
    trap stop_daemon EXIT
    DRIVER=""
    for drv in overlay2 fuse-overlayfs vfs; do
        [ "$drv" = fuse-overlayfs ] && install_tools fuse-overlayfs
        log "trying storage driver $drv"
        if start_daemon "$drv"; then DRIVER=$drv; break; fi
        stop_daemon
    done
    [ -n "$DRIVER" ] || die "no storage driver worked; see $DOCKER_PREFIX-d.log"
    log "dockerd up with $DRIVER"
}
d() { "$DOCKER_BIN" "$@"; }
# build NAME: `docker build` of the Dockerfile on stdin (context: $WORK/ctx/NAME, where
# files may already lie) as flatten-test/NAME:latest, appended to the caller's CASES.
build() {
    local name=$1 ctx=$WORK/ctx/$1
    mkdir -p "$ctx"
    cat >"$ctx/Dockerfile"
    log "build $name"
    d build --network none -q -t "flatten-test/$name:latest" "$ctx" >/dev/null
    CASES+=("$name")
}
start_daemon() {
    local driver=$1
    rm -rf "$DOCKER_PREFIX-root" "$DOCKER_PREFIX-exec"
    dockerd --iptables=false --ip6tables=false --bridge=none \
        --storage-driver "$driver" \
        --data-root "$DOCKER_PREFIX-root" --exec-root "$DOCKER_PREFIX-exec" \
        -H "$DOCKER_HOST" --pidfile "$DOCKER_PREFIX.pid" \
        >"$DOCKER_PREFIX-d.log" 2>&1 &
    for _ in $(seq 60); do
        d info >/dev/null 2>&1 && return 0
        kill -0 $! 2>/dev/null || return 1
        sleep 1
    done
    return 1
}
stop_daemon() {
    if [ -f "$DOCKER_PREFIX.pid" ]; then
        local pid; pid=$(cat "$DOCKER_PREFIX.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        rm -f "$DOCKER_PREFIX.pid"
    fi
}
